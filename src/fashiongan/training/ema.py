"""Exponential moving average of G's weights, parameterised by half-life in images
(Karras et al., StyleGAN2-ADA: ema_kimg with a ramp-up for short runs)."""

import copy

import torch
import torch.nn as nn


class EMA:
    """Holds G_ema, a frozen copy of G updated after each G step. Buffers (BN statistics) are
    copied from G rather than averaged."""

    def __init__(self, G: nn.Module, half_life_kimg: float, rampup: float):
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.half_life_nimg = half_life_kimg * 1000.0
        self.rampup = rampup

    def beta(self, batch_size: int, nimg: int) -> float:
        half_life = self.half_life_nimg
        if self.rampup > 0:
            half_life = min(half_life, nimg * self.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, G: nn.Module, beta: float | torch.Tensor) -> None:
        """G_ema ← β·G_ema + (1 − β)·G; β a number, or a device tensor in a graphed step."""
        ema_params = list(self.G_ema.parameters())
        params = [p.detach() for p in G.parameters()]
        if torch.is_tensor(beta):
            torch._foreach_lerp_(ema_params, params, [1.0 - beta] * len(params))
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.G_ema.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.G_ema.load_state_dict(state)
