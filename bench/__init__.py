"""Benchmarks: the pipeline end to end against a raw-SMTP baseline and a peer, in one run."""
