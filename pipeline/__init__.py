"""Pipeline: renders in, factor-grouped shards and PyTorch loaders out.

In:  `data/renders/<dataset>/<set>/` (PNGs + labels.csv) for every sweep type and the iid set.
Out: `data/shards/<dataset>/{train,test}/*.npz` and `manifest.json`; loaders that yield one
     sweep per mini-batch (DC-IGN) or shuffled single images (the entangled baseline).
"""
