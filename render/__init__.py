"""Rendering: meshes in, labelled images out.

In:  a dataset's meshes (`data/meshes/<dataset>/`, written by `assets`) and `params.yaml`.
Out: `data/renders/<dataset>/<factor>/` holding 8-bit PNGs under `train/` and `test/` and
     `labels.csv` (file, split, group, index, mesh, azimuth, elevation, light; degrees).

- `plan.py`    which images to render (pure, seeded; no Blender);
- `scene.py`   the Blender scene: camera on a sphere, sun light, world, Cycles settings;
- `runner.py`  worker processes rendering whole sweeps, resume, atomic writes, progress;
               `render_set(params, RenderJob(...))` is the entry point;
- `preview.py` a contact sheet of a dataset's meshes at one 3/4 view (`assets --preview`).

This is the only package that imports `bpy`, and only inside worker code (never at import
time), so everything else runs without Blender.
"""
