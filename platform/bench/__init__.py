"""Benchmarks: each prints JSON, measures ratios against baselines in the same run."""
