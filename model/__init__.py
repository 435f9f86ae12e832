"""Model: shards in, trained DC-IGN and baseline VAE checkpoints out (`models/<dataset>-<model>.pt`).

- `nets`       architectures `conv4` (fast default) and `paper` (the original network): x -> (mu, logvar), z -> logits
- `latents`    which latent indices each factor owns; which latents a sweep type clamps (pure)
- `clamp`      the DC-IGN clamp (forward: one value per sweep; backward: none) and the invariance pull
- `loss`       Bernoulli reconstruction (BCE on logits, summed over pixels), analytic KL, free bits
- `checkpoint` atomic save, `torch.load(weights_only=True)` load, `load_model(path) -> (model, meta)`
- `augment`    what the encoder sees: training images moved and scaled a little, the target unmoved (pure)
- `weak`       the later weakly-supervised objectives (Ada-GVAE, Ada-ML-VAE, GVAE): pairs and shared posteriors
- `distributed` data-parallel training with torchrun: each rank's share of a step
- `train`      the resumable training loop for `dcign`, the entangled `vae` baseline and the later methods (DVCLive, tqdm)

For evaluation: `model, meta = load_model("models/faces-dcign.pt")`; `mu, logvar = model.encode(x)` with
x float [B, C, H, W] in [0, 1]; `torch.sigmoid(model.decode(z))` is the image; `meta.owned[factor]`
lists that factor's latent indices (the rest are intrinsic).
"""
