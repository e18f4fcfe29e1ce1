"""Wasserstein critics: weight clipping (Arjovsky et al. 2017) and the gradient penalty
(Gulrajani et al. 2017)."""

from dataclasses import dataclass

import torch

from fashiongan.losses.base import LOSSES, GANLoss
from fashiongan.losses.classic import critic_g
from fashiongan.losses.penalties import gradient_penalty


def wasserstein_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """f - r: the critic maximises E[D(x)] - E[D(G(z))] (Arjovsky et al. 2017)."""
    return fake.mean() - real.mean()


@dataclass(frozen=True)
class WeightClipped(GANLoss):
    """WGAN: after each D step, D's weights are clipped to ±--weight-clip (0.01 in the paper)."""

    def after_d_update(self, D: torch.nn.Module, cfg) -> None:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-cfg.loss.weight_clip, cfg.loss.weight_clip)


@dataclass(frozen=True)
class GradientPenalized(GANLoss):
    """A critic with a penalty on the gradient norm at random interpolates of real and fake
    (weight --gp-weight). The penalty needs one critic output per sample: no batch norm in D."""

    def norm_penalty(self, D, real, fake, y, eps) -> torch.Tensor:
        return gradient_penalty(D, real, fake, y, eps=eps)

    def penalty(self, D, real, fake, y, cfg, uniform) -> torch.Tensor:
        eps = uniform((real.shape[0], 1, 1, 1))
        return cfg.loss.gp_weight * self.norm_penalty(D, real, fake.float(), y, eps)

    def constraints(self, cfg) -> list[tuple[bool, str]]:
        return super().constraints(cfg) + [
            (
                cfg.model.d_norm != "batch",
                f"--loss {self.name} with --d-norm batch: the gradient penalty needs per-sample "
                f"critic outputs; use --d-norm none",
            )
        ]

    def adapt(self, settings: dict) -> list[str]:
        notes = []
        if settings.get("model", {}).get("d_norm") == "batch":
            settings["model"]["d_norm"] = "none"
            notes.append("d_norm none (gradient penalty)")
        return notes + super().adapt(settings)


LOSSES.register("wgan")(
    WeightClipped("wgan", wasserstein_d, critic_g, False, False, weight_clip=0.01)
)
LOSSES.register("wgan-gp")(
    GradientPenalized("wgan-gp", wasserstein_d, critic_g, False, False, gradient_penalty=True)
)
