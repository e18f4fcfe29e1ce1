"""The losses whose D targets are labels (Goodfellow et al. 2014; Mao et al. 2017), and hinge."""

import torch
import torch.nn.functional as F

from fashiongan.losses.base import LOSSES, GANLoss


def bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """-[t·log σ(r) + (1-t)·log(1-σ(r))] - log(1-σ(f)), averaged (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, real_target)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """Saturating: G minimises log(1 - σ(f)) = -softplus(f) (Goodfellow et al. 2014, eq. 1)."""
    return -F.softplus(fake).mean()


def ns_g(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating: G minimises -log σ(f) = softplus(-f) (Goodfellow et al. 2014, §3)."""
    return F.softplus(-fake).mean()


def lsgan_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """½(r - t)² + ½f², the a=0, b=c=1 coding of Mao et al. 2017 (LSGAN)."""
    return 0.5 * ((real - real_target) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """½(f - 1)² (Mao et al. 2017)."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """max(0, 1 - r) + max(0, 1 + f) (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def critic_g(fake: torch.Tensor) -> torch.Tensor:
    """-f: G raises D's score of its samples (the hinge and Wasserstein G loss)."""
    return -fake.mean()


LOSSES.register("minimax")(GANLoss("minimax", bce_d, minimax_g, True, True, saturating=True))
LOSSES.register("ns")(GANLoss("ns", bce_d, ns_g, True, True))
LOSSES.register("lsgan")(GANLoss("lsgan", lsgan_d, lsgan_g, False, True))
LOSSES.register("hinge")(GANLoss("hinge", hinge_d, critic_g, False, False, zero_when_d_wins=True))
