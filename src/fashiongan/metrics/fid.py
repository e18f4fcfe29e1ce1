"""Fréchet distance between Gaussians fitted to two feature sets (FID; Heusel et al. 2017).

d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, in float64. The trace of the matrix square
root is the sum of square roots of the eigenvalues of the symmetric PSD Σ₁^½ Σ₂ Σ₁^½, so no
non-symmetric `sqrtm` (pytorch-fid's scipy route) is needed; tests check it against
scipy.linalg.sqrtm to 1e-6 relative.
"""

import numpy as np
import torch


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features: float N×F (N ≥ 2) → (mean F, unbiased covariance F×F), float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an N×F feature array with N ≥ 2, got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray):
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (float)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"mismatched statistics: {mu1.shape}/{sigma1.shape} vs {mu2.shape}")
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid(features_a, features_b) -> float:
    """FID between two float N×F feature sets."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def class_fid(features_a, labels_a, features_b, labels_b, n_classes: int) -> list[float | None]:
    """FID per class c between the members of a and b with label c (None where a class has
    fewer than 2 members on either side)."""
    fa, fb = np.asarray(features_a), np.asarray(features_b)
    la, lb = np.asarray(labels_a), np.asarray(labels_b)
    out: list[float | None] = []
    for c in range(n_classes):
        a, b = fa[la == c], fb[lb == c]
        out.append(fid(a, b) if len(a) >= 2 and len(b) >= 2 else None)
    return out
