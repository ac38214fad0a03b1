"""Benchmarks: `python -m bench [suite ...]` (see bench/__main__.py). Figures, not tests."""
