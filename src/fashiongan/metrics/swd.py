"""Sliced Wasserstein distance between two feature sets (SWD; Rabin et al. 2011, used for GANs by
Karras et al. 2018 on image patches; here on evaluator features, like FID).

Both sets are projected on `directions` random unit vectors; along each, the 1-D Wasserstein-1
distance is the mean gap between the two sets' quantile functions, read at `quantiles` evenly
spaced levels. SWD is their mean over directions. Unlike FID it assumes no Gaussian shape, and
it is a true distance: exactly 0 for a set against itself. The directions are drawn from `seed`,
and sorting makes it independent of the order of the samples.
"""

import numpy as np
import torch

DIRECTIONS = 256
QUANTILES = 1000


def swd(
    features_a, features_b, directions: int = DIRECTIONS, quantiles: int = QUANTILES, seed: int = 0
) -> float:
    """SWD between float N×F and M×F feature sets (N, M ≥ 1), in float64."""
    a = torch.as_tensor(np.asarray(features_a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(features_b), dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"need N×F and M×F feature arrays, got {tuple(a.shape)}, {tuple(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], directions, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    levels = (torch.arange(quantiles, dtype=torch.float64) + 0.5) / quantiles
    qa = torch.quantile(a @ dirs, levels, dim=0)  # levels × directions, linear interpolation
    qb = torch.quantile(b @ dirs, levels, dim=0)
    return float((qa - qb).abs().mean())
