"""The Blender scene: one object, a camera on a sphere, a sun, a black world with ambient fill.

Geometry conventions (all angles in degrees; objects are centred, unit size, +Z up, facing -Y):
- camera at d * (sin az cos el, -cos az cos el, sin el), looking at the origin, +Z up. Azimuth 0
  sees the object's front; positive azimuth moves the camera counter-clockwise seen from above,
  toward +X, i.e. it shows the object's LEFT side (the object's left is +X when it faces -Y).
  Positive elevation looks down from above. In the image the object's left is on the right (as
  when facing a person), and at positive azimuth its front turns toward the image's left.
- the sun comes FROM the direction (sin la cos le, -cos la cos le, sin le), la = the `light`
  factor, le = `light.elevation`: same convention, so light 0 lights the face frontally and
  positive light lights the object's left side. With `light.frame: camera` (default) that
  direction is taken in the camera's frame (rotated with the camera's azimuth and elevation), as in
  the paper, where the face turned in front of a fixed camera and a fixed light: light 0 then always
  lights the side facing the camera, and pose and light are independent factors of the image.
  With `light.frame: object` the light stays put while the camera orbits.
- other factors (`factors.KINDS`, `render.state`): camera distance and roll (about the viewing axis,
  positive turns the camera counter-clockwise as it looks, so the picture turns clockwise; the light's
  camera frame does not roll), the sun's elevation, strength and black-body colour, the albedo's hue
  and scale (one Hue/Saturation/Value node, only in scenes whose dataset declares them), the object's
  size.
- world: pure black where a camera ray escapes (plain background like the paper's faces), but a
  uniform white fill of strength `light.ambient` for every other ray, so shadows are not pitch black
  (`light.fill: world`); or, with `light.fill: flat`, a black world and the same fill as an unshadowed
  ambient term of the material (albedo x ambient), which has no sampling noise.

`Scene` is built once per process and then re-set (`set_state`) and re-meshed per frame; every Cycles setting
that affects pixels is set here explicitly (the factory defaults are 4096 spp, adaptive sampling,
denoising, AgX, dithering...). Gray output is Blender's BW PNG mode: the sRGB encoding of the
linear Rec.709 luminance 0.2126 R + 0.7152 G + 0.0722 B (measured against an RGB render of the same
frame: mean difference 0.26 grey levels); the paper's 0.21/0.72/0.07 are the same weights.
bpy is imported inside `Scene.__init__` only, so importing this module is free.
"""
from __future__ import annotations

import atexit
import contextlib
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from assets.mesh import DEFAULT_FINISH, Mesh
import factors as vocabulary
from config import CameraSettings, LightSettings, RenderSettings, UserError
from render.state import FrameState, blackbody_rgb, frame_state, uses_material
from render.tempdirs import owned_folder


class DeviceError(UserError):
    """`render.device: gpu` on a machine where Cycles finds no GPU."""


@dataclass(frozen=True)
class SceneSpec:
    """Everything that fixes a frame's pixels besides its mesh and angles (picklable, for workers)."""

    render: RenderSettings
    camera: CameraSettings
    light: LightSettings
    seed: int
    kinds: tuple[str, ...] = vocabulary.PAPER_KINDS
    """The kinds of the dataset's factors, in factor order (what a frame's values set)."""

    def state(self, values: Sequence[float]) -> FrameState:
        """The scene setting of a frame whose factors take `values` (the dataset's factor order)."""
        return frame_state(self.kinds, values, self.camera, self.light)

    def pixel_key(self) -> dict:
        """The settings that change pixels (not workers/threads: output is identical across them)."""
        r = self.render
        return {"size": r.size, "samples": r.samples, "color": r.color, "max_bounces": r.max_bounces,
                "denoise": r.denoise, "device": r.device, "camera": vars(self.camera), "light": vars(self.light),
                "cycles_seed": self.cycles_seed, "scene_version": SCENE_VERSION,
                # Only when on: a set rendered without passes keeps the plan key it always had.
                **({"passes": list(r.pass_names)} if r.passes else {}),
                # Only when not the paper's three: their sets keep the plan key they always had.
                **({"factors": list(self.kinds)} if self.kinds != vocabulary.PAPER_KINDS else {})}

    @property
    def cycles_seed(self) -> int:
        return self.seed % (2**31)


SCENE_VERSION = 2
"""Bump when a change here alters pixels, so `.plan.json` marks old renders stale."""

ROUGHNESS, METALLIC = DEFAULT_FINISH
"""Finish of a mesh without per-vertex `finish` (the material reads it from vertex attributes)."""
SPECULAR = 0.1
"""Principled "Specular IOR Level": a mostly matte, skin/plastic-like surface (dielectrics only;
a metallic surface's reflectance comes from its albedo)."""
PIXEL_FILTER = ("BLACKMAN_HARRIS", 1.5)
GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector from the origin toward (azimuth, elevation), in the convention above."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])


def light_direction(azimuth: float, elevation: float, light: float, light_elevation: float,
                    frame: str = "camera") -> np.ndarray:
    """Unit vector toward the sun for a frame's factors (see the conventions above)."""
    d = direction(light, light_elevation)
    if frame == "object":
        return d
    # The camera's frame is the object's frame turned by R_z(azimuth) R_x(-elevation): that maps
    # the frontal direction (0, -1, 0) onto direction(azimuth, elevation).
    az, el = math.radians(azimuth), math.radians(elevation)
    rx = np.array([[1, 0, 0], [0, math.cos(el), math.sin(el)], [0, -math.sin(el), math.cos(el)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ rx @ d


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """Albedo is stored sRGB-encoded (8-bit PLY); Cycles shades in linear values."""
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


BPY_TEMP_PREFIX = "dcign-bpy-"


def import_bpy():
    """bpy (only render code paths import Blender), with Blender's session folder in an owned folder
    (`render.tempdirs`) that is removed when this process exits, or by the next import after a kill.

    TMPDIR stays pointed at that folder: Blender makes a new session folder from it whenever the
    settings are reset (`read_factory_settings`, at every `Scene`), not only at import."""
    if "bpy" not in sys.modules:
        folder = owned_folder(BPY_TEMP_PREFIX)
        atexit.register(shutil.rmtree, folder, True)
        os.environ["TMPDIR"] = folder
    import bpy
    return bpy


class Scene:
    """The live Blender scene of one process. Use: `set_mesh`, `set_state`, `render(path)`."""

    def __init__(self, spec: SceneSpec):
        bpy = import_bpy()
        self.bpy = bpy
        self.spec = spec
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.scene = bpy.context.scene
        self._settings()
        self._world()
        self.colour = None
        self.material = self._material()
        self.camera = self._camera()
        self.sun = self._sun()
        self.object = bpy.data.objects.new("object", bpy.data.meshes.new("empty"))
        self.scene.collection.objects.link(self.object)
        self.mesh_key: object = None
        self.passes_output = self._passes() if spec.render.passes else None

    # ---------------------------------------------------------------------------- per frame

    def set_mesh(self, mesh: Mesh, key: object) -> None:
        """Replace the object's geometry; `key` identifies the mesh so a repeat is free."""
        if key == self.mesh_key:
            return
        old = self.object.data
        self.object.data = self._bpy_mesh(mesh)
        self.bpy.data.meshes.remove(old)
        self.mesh_key = key

    def set_state(self, state: FrameState) -> None:
        """Set the camera, the sun and the object as one frame's factors say (`render.state`)."""
        from mathutils import Quaternion, Vector

        az, el = state.camera_azimuth, state.camera_elevation
        eye = Vector(direction(az, el) * state.camera_distance)
        self.camera.location = eye
        turn = (-eye).to_track_quat("-Z", "Y")
        if state.camera_roll:  # about the camera's own viewing axis (its local Z)
            turn = turn @ Quaternion((0.0, 0.0, 1.0), math.radians(state.camera_roll))
        self.camera.rotation_euler = turn.to_euler()
        towards_sun = Vector(light_direction(az, el, state.light_azimuth, state.light_elevation, self.spec.light.frame))
        # A sun shines along its local -Z, i.e. away from where it sits.
        self.sun.rotation_euler = (-towards_sun).to_track_quat("-Z", "Y").to_euler()
        # Only what changes is set: an untouched datablock costs Cycles' persistent data no update.
        if self.sun.data.energy != state.light_strength:
            self.sun.data.energy = state.light_strength
        if state.light_temperature is not None:
            self.sun.data.color = blackbody_rgb(state.light_temperature)
        if tuple(self.object.scale) != (state.object_scale,) * 3:
            self.object.scale = (state.object_scale,) * 3
        if self.colour is not None:
            self.colour.inputs["Hue"].default_value = (0.5 + state.object_hue / 360.0) % 1.0
            self.colour.inputs["Value"].default_value = state.object_albedo

    def render(self, path: Path | str) -> Path | None:
        """Render the current frame to `path` (PNG, 8-bit, BW or RGB, uncompressed). With passes on,
        the same render also writes them to a multilayer EXR beside it, whose path is returned."""
        path = Path(path)
        self.scene.render.filepath = str(path)
        exr = None
        if self.passes_output is not None:
            self.passes_output.directory = str(path.parent)
            self.passes_output.file_name = f"{path.stem}-passes"
            exr = path.with_name(f"{path.stem}-passes.exr")  # no frame number: measured in bpy 5.0.1
        with _quiet_stdout():
            self.bpy.ops.render.render(write_still=True)
        return exr

    def render_only(self) -> None:
        """Render without writing anything: the engine's own floor (benchmarks)."""
        with _quiet_stdout():
            self.bpy.ops.render.render(write_still=False)

    # ---------------------------------------------------------------------------- setup

    def _settings(self) -> None:
        r, s = self.spec.render, self.scene
        s.render.engine = "CYCLES"
        c = s.cycles
        c.device = "CPU"
        if r.device == "gpu":
            self._enable_gpu()
            c.device = "GPU"
        c.samples = r.samples
        c.use_adaptive_sampling = False
        c.use_denoising = r.denoise
        c.max_bounces = r.max_bounces
        c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = r.max_bounces
        c.volume_bounces = 0
        c.transparent_max_bounces = r.max_bounces
        c.caustics_reflective = c.caustics_refractive = False
        c.sample_clamp_direct = c.sample_clamp_indirect = 0.0
        c.use_light_tree = False  # one sun and a world: nothing for a light tree to choose between
        c.seed = self.spec.cycles_seed
        c.use_animated_seed = False
        c.pixel_filter_type, c.filter_width = PIXEL_FILTER
        s.render.use_persistent_data = True
        s.render.threads_mode = "FIXED"
        s.render.threads = r.threads
        s.render.resolution_x = s.render.resolution_y = r.size
        s.render.resolution_percentage = 100
        s.render.pixel_aspect_x = s.render.pixel_aspect_y = 1.0
        s.render.film_transparent = False
        s.render.use_border = False
        s.render.use_compositing = False
        s.render.use_sequencer = False
        s.render.use_stamp = False
        s.render.dither_intensity = 0.0  # the default 1.0 sprinkles 1/255 noise over the black background
        vs = s.view_settings
        s.display_settings.display_device = "sRGB"
        vs.view_transform = "Standard"
        vs.look = "None"
        vs.exposure = 0.0
        vs.gamma = 1.0
        vs.use_curve_mapping = False
        img = s.render.image_settings
        img.file_format = "PNG"
        img.color_mode = "BW" if r.color == "gray" else "RGB"
        img.color_depth = "8"
        img.compression = 0  # a scratch file, re-encoded by the caller: do not pay for zlib twice

    def _passes(self):
        """Ground-truth passes in the same render: Cycles' Z, Normal and Object Index passes go through
        the compositor to a 32-bit multilayer EXR (one File Output node), while the group output
        passes the render layer's image through untouched, so the PNG keeps its pixels. Returns the
        File Output node (its folder and name are set per frame)."""
        bpy, s = self.bpy, self.scene
        layer = s.view_layers[0]
        layer.use_pass_z = layer.use_pass_normal = layer.use_pass_object_index = True
        self.object.pass_index = 1  # Object Index pass: 1 on the object, 0 where rays escape
        tree = bpy.data.node_groups.new("passes", "CompositorNodeTree")
        s.compositing_node_group = tree
        s.render.use_compositing = True
        layers = tree.nodes.new("CompositorNodeRLayers")
        out = tree.nodes.new("CompositorNodeOutputFile")
        out.format.media_type = "MULTI_LAYER_IMAGE"
        out.format.file_format = "OPEN_EXR_MULTILAYER"
        out.format.color_depth = "32"
        out.format.exr_codec = "NONE"  # a scratch file read back at once: no time spent compressing
        for kind, name in (("FLOAT", "Depth"), ("VECTOR", "Normal"), ("FLOAT", "Object Index")):
            out.file_output_items.new(kind, name)
            tree.links.new(layers.outputs[name], out.inputs[name])
        image = tree.nodes.new("NodeGroupOutput")
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        tree.links.new(layers.outputs["Image"], image.inputs[0])
        return out

    def _enable_gpu(self) -> None:
        prefs = self.bpy.context.preferences.addons["cycles"].preferences
        for backend in GPU_BACKENDS:
            try:
                prefs.compute_device_type = backend
            except TypeError:  # backend not compiled into this Blender
                continue
            prefs.get_devices()
            gpus = [d for d in prefs.devices if d.type == backend]
            if gpus:
                for d in prefs.devices:
                    d.use = d.type == backend
                return
        raise DeviceError("render.device is gpu but Cycles finds no GPU (tried "
                          f"{', '.join(GPU_BACKENDS)}); set render.device: cpu")

    def _world(self) -> None:
        bpy = self.bpy
        world = bpy.data.worlds.new("world")
        self.scene.world = world
        nodes, links = world.node_tree.nodes, world.node_tree.links
        nodes.clear()
        out = nodes.new("ShaderNodeOutputWorld")
        path = nodes.new("ShaderNodeLightPath")
        mix = nodes.new("ShaderNodeMixShader")
        fill = nodes.new("ShaderNodeBackground")
        fill.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        # A flat fill is the material's own ambient term (`_material`), not light from the sky.
        fill.inputs["Strength"].default_value = self.spec.light.ambient if self.spec.light.fill == "world" else 0.0
        black = nodes.new("ShaderNodeBackground")
        black.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
        black.inputs["Strength"].default_value = 0.0
        links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
        links.new(fill.outputs["Background"], mix.inputs[1])
        links.new(black.outputs["Background"], mix.inputs[2])
        links.new(mix.outputs["Shader"], out.inputs["Surface"])

    def _material(self):
        bpy = self.bpy
        mat = bpy.data.materials.new("albedo")
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        bsdf = next(n for n in nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
        for name, output, socket in (("albedo", "Color", "Base Color"), ("roughness", "Fac", "Roughness"),
                                     ("metallic", "Fac", "Metallic")):
            attr = nodes.new("ShaderNodeAttribute")
            attr.attribute_type = "GEOMETRY"
            attr.attribute_name = name
            source = attr.outputs[output]
            if name == "albedo" and uses_material(self.spec.kinds):
                # Hue turned and value scaled per frame (`set_state`); only here, so other scenes keep their pixels.
                self.colour = nodes.new("ShaderNodeHueSaturation")
                links.new(source, self.colour.inputs["Color"])
                source = self.colour.outputs["Color"]
            links.new(source, bsdf.inputs[socket])
            if name == "albedo" and self.spec.light.fill == "flat":
                # Unshadowed ambient: what a white sky of strength `ambient` gives an unoccluded Lambertian
                # surface, albedo x ambient, emitted directly, so no sample is spent (or noisy) on it.
                links.new(source, bsdf.inputs["Emission Color"])
                bsdf.inputs["Emission Strength"].default_value = self.spec.light.ambient
        bsdf.inputs["Specular IOR Level"].default_value = SPECULAR
        return mat

    def _camera(self):
        bpy = self.bpy
        data = bpy.data.cameras.new("camera")
        data.type = "PERSP"
        data.lens_unit = "FOV"
        data.sensor_fit = "AUTO"
        data.angle = math.radians(self.spec.camera.fov)
        data.clip_start = 0.05
        data.clip_end = 100.0
        cam = bpy.data.objects.new("camera", data)
        self.scene.collection.objects.link(cam)
        self.scene.camera = cam
        return cam

    def _sun(self):
        bpy = self.bpy
        data = bpy.data.lights.new("sun", "SUN")
        data.energy = self.spec.light.strength
        data.angle = math.radians(0.5)  # near point-like: crisp, deterministic shading
        data.color = (1.0, 1.0, 1.0)
        sun = bpy.data.objects.new("sun", data)
        self.scene.collection.objects.link(sun)
        return sun

    def _bpy_mesh(self, mesh: Mesh):
        # Attribute API: ~15x faster than from_pydata for ~100k vertices (blender.md).
        me = self.bpy.data.meshes.new("mesh")
        nv, nf = len(mesh.vertices), len(mesh.faces)
        me.vertices.add(nv)
        me.loops.add(3 * nf)
        me.polygons.add(nf)
        me.attributes["position"].data.foreach_set("vector", mesh.vertices.ravel())
        me.attributes[".corner_vert"].data.foreach_set("value", mesh.faces.ravel())
        me.polygons.foreach_set("loop_start", np.arange(0, 3 * nf, 3, dtype=np.int32))
        me.update(calc_edges=True)
        me.shade_smooth()
        rgba = np.ones((nv, 4), dtype=np.float32)
        rgba[:, :3] = srgb_to_linear(mesh.colors)
        me.color_attributes.new("albedo", "FLOAT_COLOR", "POINT").data.foreach_set("color", rgba.ravel())
        if mesh.finish is None:
            finish = np.tile(np.array([ROUGHNESS, METALLIC], dtype=np.float32), (nv, 1))
        else:
            finish = np.clip(mesh.finish, 0.0, 1.0)
        for k, name in enumerate(("roughness", "metallic")):
            me.attributes.new(name, "FLOAT", "POINT").data.foreach_set("value", np.ascontiguousarray(finish[:, k]))
        me.materials.append(self.material)
        return me


@contextlib.contextmanager
def _quiet_stdout():
    """Blender logs a "Saved: ..." line per frame on the C-level stdout; send it to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
