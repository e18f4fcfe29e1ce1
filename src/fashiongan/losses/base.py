"""What a GAN loss is to the rest of fashiongan: its D and G terms over raw discriminator logits
(higher = more real), and everything the training step and the config checks need to know of it.

The training step never asks a loss's name. It calls `d_term`, `g_term`, `penalty` (a term on D
the loss owns, such as WGAN-GP's) and `after_d_update` (such as WGAN's weight clipping), and
reads the flags below; `constraints` says what a loss cannot be combined with, and `graphable`
whether a CUDA graph can replay its step. A new loss is one file that registers a GANLoss (or a
subclass overriding those methods) plus its import line in `fashiongan/losses/__init__.py`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fashiongan.config import or_list
from fashiongan.registry import Registry

# (shape) → a float32 tensor of U[0, 1) draws from the step's seeded generator: the global
# batch's draws, each rank keeping its rows, as for the latents (see training/distributed.py)
Uniform = Callable[[tuple[int, ...]], torch.Tensor]


@dataclass(frozen=True)
class GANLoss:
    """d_loss(real, fake, real_target) and g_loss(fake) return scalar means over the batch.
    `real_target` < 1 is one-sided label smoothing (Salimans et al. 2016), meaningful for the
    losses whose D targets are labels. A relativistic loss scores fakes against reals: its G loss
    takes D's logits on a real batch too, g_loss(fake, real), and both take `batch_mean`, the mean
    over the whole batch (over every rank's rows under torchrun; torch.mean in one process)."""

    name: str
    d_loss: Callable[..., torch.Tensor]
    g_loss: Callable[..., torch.Tensor]  # (fake), or (fake, real) when relativistic
    probabilistic: bool  # D's output is a logit of P(real): D(x) is logged as sigmoid(logit)
    smoothable: bool  # real_target (label smoothing) applies
    weight_clip: float | None = None  # WGAN's clip value (Arjovsky et al.: 0.01); --weight-clip
    gradient_penalty: bool = False  # its `penalty` draws random interpolates every D update
    relativistic: bool = False  # g_loss also takes D's logits on reals
    zero_when_d_wins: bool = False  # D's loss reaches ~0 only when D separates every pair
    saturating: bool = False  # G's gradient vanishes when D rejects every fake (minimax)

    def d_term(
        self, real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean
    ) -> torch.Tensor:
        relative = {"batch_mean": batch_mean} if self.relativistic else {}
        return self.d_loss(real, fake, real_target, **relative)

    def g_term(self, fake: torch.Tensor, real: torch.Tensor | None, batch_mean) -> torch.Tensor:
        if self.relativistic:
            return self.g_loss(fake, real, batch_mean=batch_mean)
        return self.g_loss(fake)

    def penalty(self, D, real, fake, y, cfg, uniform: Uniform) -> torch.Tensor | None:
        """A weighted term on D that belongs to this loss, added at every D update (float32
        inputs; its double backward is the fragile part). None: the loss has none."""
        return None

    def after_d_update(self, D: torch.nn.Module, cfg) -> None:
        """Called after each optimiser step of D (e.g. to clip its weights)."""

    @property
    def graphable(self) -> bool:
        """A CUDA graph replays the step's maths with the draws made before it: a loss that
        draws random numbers inside its terms cannot be replayed."""
        return not self.gradient_penalty

    def constraints(self, cfg) -> list[tuple[bool, str]]:
        """(holds, message) for each rule this loss puts on the rest of the settings."""
        smoothable = or_list([n for n in LOSSES.names() if LOSSES.get(n).smoothable], "and")
        return [
            (
                cfg.loss.label_smoothing == 1.0 or self.smoothable,
                f"--label-smoothing applies to {smoothable}, not --loss {self.name}",
            )
        ]

    def adapt(self, settings: dict) -> list[str]:
        """Make a nested settings dict fit this loss where it can (used when comparing losses on
        one base recipe); returns what was changed, for the report."""
        loss = settings.setdefault("loss", {})
        if not self.smoothable and loss.get("label_smoothing", 1.0) != 1.0:
            loss["label_smoothing"] = 1.0
            return ["no label smoothing"]
        return []


LOSSES: Registry[GANLoss] = Registry("loss")
