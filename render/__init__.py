"""Rendering: meshes in, labelled images out.

In:  a dataset's meshes (`data/meshes/<dataset>/`, written by `assets`) and `params.yaml`.
Out: `data/renders/<dataset>/<set>/` (one set per declared factor, `intrinsic`, `iid`) holding 8-bit PNGs
     under `train/` and `test/` and `labels.csv` (file, split, group, index, mesh, then one column per
     factor the dataset declares, in its order; e.g. azimuth, elevation, light in degrees).

- `plan.py`    which images to render (pure, seeded; no Blender);
- `state.py`   what a frame's factor values set in the scene (pure: camera, sun, object);
- `scene.py`   the Blender scene: camera on a sphere, sun light, world, Cycles settings;
- `cameras.py` each frame's camera matrices (pure), for the ground-truth passes;
- `worker.py`  the per-process Blender side: the scene cache, frame rendering, the sweep task;
- `runner.py`  the driver: validation, resume, the local process pool, labels;
               `render_set(params, RenderJob(...))` is the entry point;
- `cluster.py` the Ray executor (one Blender actor per worker process);
- `preview.py` a contact sheet of a dataset's meshes at one 3/4 view (`assets --preview`).

This is the only package that imports `bpy`, and only inside worker code (never at import
time), so everything else runs without Blender.
"""
