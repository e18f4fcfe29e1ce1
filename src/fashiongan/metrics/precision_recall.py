"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020)
from k-nearest-neighbour balls in feature space, following the reference `prdc` package (k = 5,
Euclidean distances, strict inequalities); tests cross-check against it. Distances are computed
in float64 in row chunks, so 10k × 10k never holds a full matrix."""

import numpy as np
import torch

CHUNK = 2048


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * a @ b.T
    return sq.clamp_(min=0).sqrt_()


def kth_neighbour_distance(x, k: int) -> torch.Tensor:
    """Distance from each row of x (N×F) to its k-th nearest other row (the (k+1)-th smallest,
    self included, as prdc counts)."""
    x = _as64(x)
    if len(x) <= k:
        raise ValueError(f"k-NN with k={k} needs more than {k} features, got {len(x)}")
    return torch.cat(
        [_distances(c, x).topk(k + 1, largest=False).values[:, k] for c in x.split(CHUNK)]
    )


def prdc(real, fake, k: int = 5, real_radii: torch.Tensor | None = None) -> dict[str, float]:
    """real: float N×F, fake: float M×F → precision, recall, density, coverage. real_radii:
    kth_neighbour_distance(real, k), when the caller has it cached."""
    real, fake = _as64(real), _as64(fake)
    r_real = kth_neighbour_distance(real, k) if real_radii is None else real_radii.double()
    r_fake = kth_neighbour_distance(fake, k)  # M
    inside_count = torch.zeros(len(fake), dtype=torch.float64)  # real balls holding each fake
    nearest_fake = torch.empty(len(real), dtype=torch.float64)
    recalled = torch.empty(len(real), dtype=torch.bool)
    for start in range(0, len(real), CHUNK):
        d = _distances(real[start : start + CHUNK], fake)  # chunk × M
        radius = r_real[start : start + CHUNK, None]
        inside_count += (d < radius).sum(0)
        nearest_fake[start : start + CHUNK] = d.min(1).values
        recalled[start : start + CHUNK] = (d < r_fake[None, :]).any(1)
    return {
        "precision": float((inside_count > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(inside_count.mean() / k),
        "coverage": float((nearest_fake < r_real).double().mean()),
    }
