"""Models: the registry (a name → DCGANSpec), the networks, and their builders. Training and
sampling build through models/build.py from a run's settings; build_generator and
build_discriminator take the settings one by one (for tests and notebooks)."""

import torch.nn as nn

from fashiongan.errors import FashionGANError
from fashiongan.models.dcgan import (
    CONDITIONINGS,
    D_NORMS,
    DCGANSpec,
    Discriminator,
    Generator,
)
from fashiongan.models.registry import MODELS


def build_generator(
    model: str,
    z_dim: int,
    n_classes: int,
    cond: str,
    width: float,
    embed_dim: int,
    depth: int = 0,
    channels: int = 1,
) -> Generator:
    if cond not in CONDITIONINGS:
        raise FashionGANError(
            f"unknown conditioning {cond!r}; choose one of: {', '.join(CONDITIONINGS)}"
        )
    return Generator(MODELS.get(model), z_dim, n_classes, cond, width, embed_dim, depth, channels)


def build_discriminator(
    model: str,
    n_classes: int,
    cond: str,
    width: float,
    d_norm: str,
    spectral_norm: bool,
    aux_classifier: bool = False,
    mbstd: int = 0,
    depth: int = 0,
    channels: int = 1,
) -> Discriminator:
    if d_norm not in D_NORMS:
        raise FashionGANError(f"unknown --d-norm {d_norm!r}; choose one of: {', '.join(D_NORMS)}")
    return Discriminator(
        MODELS.get(model),
        n_classes,
        cond,
        width,
        d_norm,
        spectral_norm,
        aux_classifier,
        mbstd,
        depth,
        channels,
    )


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "CONDITIONINGS",
    "D_NORMS",
    "MODELS",
    "DCGANSpec",
    "Discriminator",
    "Generator",
    "build_discriminator",
    "build_generator",
    "count_params",
]
