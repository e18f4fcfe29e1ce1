"""fashiongan: train, sample and evaluate (conditional) DCGANs on Fashion-MNIST."""

__version__ = "0.1.0"

from fashiongan.sampling import LoadedGenerator, load_generator  # noqa: E402

__all__ = ["LoadedGenerator", "__version__", "load_generator"]
