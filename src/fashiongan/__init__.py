"""fashiongan: train, sample and evaluate (conditional) DCGANs on Fashion-MNIST."""

__version__ = "0.1.0"

from fashiongan.sampling import LoadedGenerator, load_generator  # noqa: E402

__all__ = ["LoadedGenerator", "__version__", "evaluate", "load_generator"]


def __getattr__(name: str):
    # `fashiongan.evaluate` imports the metrics (and matplotlib) only when first used
    if name == "evaluate":
        from fashiongan.metrics.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'fashiongan' has no attribute {name!r}")
