"""Pipeline: renders in, factor-grouped shards and PyTorch loaders out.

In:  `data/renders/<dataset>/<set>/` (PNGs + labels.csv) for every sweep type and the iid set.
Out: `data/shards/<dataset>/{train,test}/<set>-NNNN.npz` and `manifest.json`; loaders that yield
     one sweep per mini-batch (DC-IGN) or shuffled single images (the entangled baseline).

- `npzfile.py`  byte-reproducible, uncompressed npz files and their memory-mapped members;
- `shards.py`   packing (`pack_dataset`), the manifest, and verification (`open_shard`, `verify_dir`);
- `loader.py`   `open_split`, `SweepSampler`, `ImageBatches` (seeded, resumable from a step count).

Nothing here imports Blender; the shard stage depends on `npzfile.py` and `shards.py` only.
"""
