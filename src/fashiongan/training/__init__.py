"""Training: the loop, EMA, monitoring, periodic evaluation and loss/preset comparison."""
