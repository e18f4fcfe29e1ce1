"""Training: the loop, EMA, checkpoints, monitoring."""
