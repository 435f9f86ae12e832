"""Evaluation: a checkpoint and the test shards in; metrics, codes, figures and a report out."""
