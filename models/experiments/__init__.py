"""The papers' experiments on generated data (``python -m models experiment``); see docs/experiments.md."""
