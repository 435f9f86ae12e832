"""Assets: identity parameters in, normalised meshes out.

In:  a dataset's `source` in `params.yaml`: a procedural generator (`faces`, `chairs`) or a
     folder of the user's OBJ / PLY / glTF / GLB files.
Out: `data/meshes/<dataset>/`: one binary PLY per mesh (unit size, centred, +Z up, front
     toward -Y, per-vertex albedo) and `index.json` (split, identity parameters and turn symmetry
     per mesh).
No Blender here: meshes are numpy arrays.
"""
