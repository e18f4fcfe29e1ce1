"""Model registry: a name → DCGANSpec; `build_models` makes (G, D) from a ModelConfig."""

import torch.nn as nn

from fashiongan.errors import FashionGANError
from fashiongan.models.dcgan import (
    CONDITIONINGS,
    D_NORMS,
    DCGANSpec,
    Discriminator,
    Generator,
)
from fashiongan.registry import Registry

MODELS: Registry[DCGANSpec] = Registry("model")
MODELS.register("dcgan28")(DCGANSpec(resolution=28, base_res=7, g_mult=(2, 1), d_mult=(1, 2)))
MODELS.register("dcgan64")(
    DCGANSpec(resolution=64, base_res=4, g_mult=(8, 4, 2, 1), d_mult=(1, 2, 4, 8))
)


def build_generator(
    model: str, z_dim: int, n_classes: int, cond: str, width: float, embed_dim: int, depth: int = 0
) -> Generator:
    if cond not in CONDITIONINGS:
        raise FashionGANError(
            f"unknown conditioning {cond!r}; choose one of: {', '.join(CONDITIONINGS)}"
        )
    return Generator(MODELS.get(model), z_dim, n_classes, cond, width, embed_dim, depth)


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
