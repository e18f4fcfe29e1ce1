"""Inception Score (Salimans et al. 2016) with the evaluator's class posteriors:
exp E_x KL(p(y|x) ‖ p(y)), mean and std over splits (10 by default, as in the original code and
torch-fidelity). Its ceiling is the number of classes (10): confident and balanced predictions."""

import numpy as np
import torch


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """logits: float N×C (N ≥ splits) → (mean, std) over `splits` consecutive chunks."""
    lg = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if lg.ndim != 2 or len(lg) < splits:
        raise ValueError(f"need N×C logits with N ≥ {splits}, got shape {tuple(lg.shape)}")
    log_p = torch.log_softmax(lg, dim=1)
    scores = []
    for part in log_p.chunk(splits):
        log_marginal = torch.logsumexp(part, 0) - np.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
