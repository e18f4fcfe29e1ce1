"""Relativistic losses: D scores each real against a fake, or against the fakes' batch mean
(Jolicoeur-Martineau 2018; Huang et al. 2024, RpGAN)."""

import torch
import torch.nn.functional as F

from fashiongan.losses.base import LOSSES, GANLoss


def rp_d(real: torch.Tensor, fake: torch.Tensor, real_target: float, **_) -> torch.Tensor:
    """softplus(f - r) over pairs: D wants each real to score above the fake beside it
    (Jolicoeur-Martineau 2018, RSGAN; Huang et al. 2024, RpGAN)."""
    return F.softplus(fake - real).mean()


def rp_g(fake: torch.Tensor, real: torch.Tensor, **_) -> torch.Tensor:
    """softplus(r - f) over pairs: G wants each fake to score above its real."""
    return F.softplus(real - fake).mean()


def ra_margins(real: torch.Tensor, fake: torch.Tensor, batch_mean) -> tuple:
    """Each real against the mean fake, and each fake against the mean real."""
    return real - batch_mean(fake), fake - batch_mean(real)


def ra_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean=torch.mean
) -> torch.Tensor:
    """softplus(-(r - mean f)) + softplus(f - mean r): each sample against the other side's
    batch mean (Jolicoeur-Martineau 2018, RaSGAN)."""
    r, f = ra_margins(real, fake, batch_mean)
    return F.softplus(-r).mean() + F.softplus(f).mean()


def ra_g(fake: torch.Tensor, real: torch.Tensor, batch_mean=torch.mean) -> torch.Tensor:
    """The D loss with the roles of real and fake swapped."""
    return ra_d(fake, real, 1.0, batch_mean)


def rals_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean=torch.mean
) -> torch.Tensor:
    """(r - mean f - 1)² + (f - mean r + 1)² (Jolicoeur-Martineau 2018, RaLSGAN)."""
    r, f = ra_margins(real, fake, batch_mean)
    return (r - 1.0).square().mean() + (f + 1.0).square().mean()


def rals_g(fake: torch.Tensor, real: torch.Tensor, batch_mean=torch.mean) -> torch.Tensor:
    """The D loss with the roles of real and fake swapped."""
    return rals_d(fake, real, 1.0, batch_mean)


def rahinge_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean=torch.mean
) -> torch.Tensor:
    """max(0, 1 - (r - mean f)) + max(0, 1 + (f - mean r)) (Jolicoeur-Martineau 2018,
    RaHingeGAN)."""
    r, f = ra_margins(real, fake, batch_mean)
    return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()


def rahinge_g(fake: torch.Tensor, real: torch.Tensor, batch_mean=torch.mean) -> torch.Tensor:
    """The D loss with the roles of real and fake swapped."""
    return rahinge_d(fake, real, 1.0, batch_mean)


for _name, _d, _g, _zero in (
    ("rpgan", rp_d, rp_g, True),
    ("ragan", ra_d, ra_g, True),
    ("rahinge", rahinge_d, rahinge_g, True),
    ("ralsgan", rals_d, rals_g, False),  # its D loss is 0 at margins of exactly 1, not beyond
):
    LOSSES.register(_name)(
        GANLoss(_name, _d, _g, False, False, relativistic=True, zero_when_d_wins=_zero)
    )
