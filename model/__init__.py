"""Model: shards in, trained DC-IGN and baseline VAE checkpoints out (`models/<dataset>-<model>.pt`)."""
