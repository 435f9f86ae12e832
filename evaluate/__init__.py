"""Evaluation: a checkpoint and the test shards in; metrics, codes, figures and a report out.

In:  `models/<dataset>-<model>.pt`, `data/shards/<dataset>/` (train sweeps for choices and fits, test
     sweeps + iid set for every score), `dvclive/<dataset>-<model>/` (training curves).
Out: `metrics/<dataset>-<model>.json` (DVC metrics), `metrics/<dataset>-<model>-codes.npz` (iid codes,
     factors, mesh), `metrics/<dataset>-<model>-mapping.json` (factor -> latent, read by `rerender`),
     `plots/<dataset>-<model>/*.png`, and per dataset `reports/<dataset>.md` + `plots/<dataset>-comparison.png`.

Modules: `disentanglement` (disentanglement_lib metrics, pure numpy/sklearn), `tied` (latent vs factor),
`invariance`, `mapping` (factor -> latent), `rerender` (re-rendering scores and the command), `encode`
(the only torch), `figures`, `report`, `run` (the stage).
"""
