"""WGAN-LP (Petzka, Fischer & Lukovnicov 2018, "On the regularization of Wasserstein GANs"):
the WGAN-GP critic with a one-sided penalty, λ·mean(max(0, ‖∇D(x̂)‖ - 1)²). It enforces the
Lipschitz constraint without pulling every gradient norm up to 1, which the paper finds gentler
on the critic and less sensitive to λ. λ is --gp-weight (10, as for WGAN-GP)."""

from dataclasses import dataclass

import torch

from fashiongan.losses.base import LOSSES
from fashiongan.losses.classic import critic_g
from fashiongan.losses.penalties import interpolate_norm
from fashiongan.losses.wasserstein import GradientPenalized, wasserstein_d


@dataclass(frozen=True)
class LipschitzPenalized(GradientPenalized):
    def norm_penalty(self, D, real, fake, y, eps) -> torch.Tensor:
        norm = interpolate_norm(D, real, fake, y, eps=eps)
        return torch.relu(norm - 1.0).square().mean()


LOSSES.register("wgan-lp")(
    LipschitzPenalized("wgan-lp", wasserstein_d, critic_g, False, False, gradient_penalty=True)
)
