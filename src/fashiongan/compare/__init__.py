"""`fashiongan compare` and `fashiongan sweep`: variants of a recipe (per loss, preset or grid
point, per seed), trained as separate `fashiongan train` processes, evaluated and tabulated."""

from fashiongan.compare.runs import (
    DEFAULT_LOSSES,
    compare,
    grid_variants,
    loss_variants,
    preset_variants,
)

__all__ = ["DEFAULT_LOSSES", "compare", "grid_variants", "loss_variants", "preset_variants"]
