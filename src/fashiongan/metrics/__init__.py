"""Metrics in the feature space of the shipped Fashion-MNIST evaluator: one module per metric,
the registry and floors in suite.py, `evaluate` in evaluate.py."""
