"""The loss registry. Each module below registers its losses; a new loss is a new module and its
line here. See base.py for what a loss provides."""

from fashiongan.losses import classic, relativistic, wasserstein, wgan_lp  # noqa: F401 - register
from fashiongan.losses.base import LOSSES, GANLoss, Uniform
from fashiongan.losses.penalties import gradient_penalty, r1_penalty

__all__ = ["LOSSES", "GANLoss", "Uniform", "gradient_penalty", "r1_penalty"]
