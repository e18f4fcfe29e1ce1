"""Kernel Inception Distance (Bińkowski et al. 2018) in any feature space: the unbiased MMD²
with the cubic polynomial kernel k(x, y) = (xᵀy / F + 1)³, averaged over random subsets (the
mean and std over subsets, as torch-fidelity and clean-fid report them)."""

import numpy as np
import torch

from fashiongan.metrics.order import canonical_order


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(
    features_fake,
    features_real,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD² over `subsets` random draws (without replacement within
    a draw) of min(subset_size, N) features from each float N×F set. float64 arithmetic."""
    # canonical order first: the seeded subsets then hold the same rows for any input order
    fake = torch.as_tensor(np.asarray(features_fake), dtype=torch.float64)
    fake = fake[canonical_order(np.asarray(features_fake))]
    real = torch.as_tensor(np.asarray(features_real), dtype=torch.float64)
    real = real[canonical_order(np.asarray(features_real))]
    size = min(subset_size, len(fake), len(real))
    if size < 2:
        raise ValueError(f"KID needs at least 2 features per set, got {len(fake)} and {len(real)}")
    g = torch.Generator().manual_seed(seed)
    values = [
        _mmd2_unbiased(
            fake[torch.randperm(len(fake), generator=g)[:size]],
            real[torch.randperm(len(real), generator=g)[:size]],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
