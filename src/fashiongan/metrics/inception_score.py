"""Inception Score (Salimans et al. 2016) with the evaluator's class posteriors:
exp E_x KL(p(y|x) ‖ p(y)), mean and std over splits (10 by default, as in the original code and
torch-fidelity). Its ceiling is the number of classes (10): confident and balanced predictions.

The splits are drawn from a seeded permutation of the canonically ordered set (torch-fidelity
permutes with a fixed seed too). Consecutive chunks of the set as given would hold one class each
when the set is sorted by class, and read IS ≈ 1 for the real test split."""

import numpy as np
import torch

from fashiongan.metrics.order import canonical_order


def inception_score(logits, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """logits: float N×C (N ≥ splits) → (mean, std) over `splits` chunks of a permutation seeded
    by `seed`; the same for any order of the rows."""
    lg = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if lg.ndim != 2 or len(lg) < splits:
        raise ValueError(
            f"Inception Score needs at least {splits} samples (N×C logits), got shape "
            f"{tuple(lg.shape)}"
        )
    lg = lg[canonical_order(np.asarray(logits))]
    lg = lg[torch.randperm(len(lg), generator=torch.Generator().manual_seed(seed))]
    log_p = torch.log_softmax(lg, dim=1)
    scores = []
    for part in log_p.tensor_split(splits):
        log_marginal = torch.logsumexp(part, 0) - np.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
