"""GAN losses over raw discriminator logits (higher = more real), and the gradient penalties.

Each loss is a `GANLoss`: d_loss(real, fake, real_target) and g_loss(fake) return scalar means
over the batch. `real_target` < 1 is one-sided label smoothing (Salimans et al. 2016) and is
only meaningful for the losses whose D targets are labels (minimax, ns, lsgan). A relativistic
loss scores fakes against reals, so its G loss needs D's logits on a real batch too:
g_loss(fake, real); both of its losses take `batch_mean`, the mean over the whole batch (over
every rank's rows under torchrun; torch.mean in one process).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fashiongan.registry import Registry


@dataclass(frozen=True)
class GANLoss:
    name: str
    d_loss: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    g_loss: Callable[..., torch.Tensor]  # (fake), or (fake, real) when relativistic
    probabilistic: bool  # D's output is a logit of P(real): D(x) is logged as sigmoid(logit)
    smoothable: bool  # real_target (label smoothing) applies
    weight_clip: float | None = None  # WGAN: clip D weights to [-c, c] after each D step
    gradient_penalty: bool = False  # WGAN-GP: add λ·(‖∇D(x̂)‖ - 1)² on interpolates
    relativistic: bool = False  # g_loss also takes D's logits on reals
    zero_when_d_wins: bool = False  # D's loss reaches ~0 only when D separates every pair


LOSSES: Registry[GANLoss] = Registry("loss")


def _bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """-[t·log σ(r) + (1-t)·log(1-σ(r))] - log(1-σ(f)), averaged (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, real_target)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def _minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """Saturating: G minimises log(1 - σ(f)) = -softplus(f) (Goodfellow et al. 2014, eq. 1)."""
    return -F.softplus(fake).mean()


def _ns_g(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating: G minimises -log σ(f) = softplus(-f) (Goodfellow et al. 2014, §3)."""
    return F.softplus(-fake).mean()


def _lsgan_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """½(r - t)² + ½f², the a=0, b=c=1 coding of Mao et al. 2017 (LSGAN)."""
    return 0.5 * ((real - real_target) ** 2).mean() + 0.5 * (fake**2).mean()


def _lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """½(f - 1)² (Mao et al. 2017)."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def _hinge_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """max(0, 1 - r) + max(0, 1 + f) (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _wasserstein_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """f - r: the critic maximises E[D(x)] - E[D(G(z))] (Arjovsky et al. 2017)."""
    return fake.mean() - real.mean()


def _wasserstein_g(fake: torch.Tensor) -> torch.Tensor:
    """-f (also the hinge G loss)."""
    return -fake.mean()


def _rp_d(real: torch.Tensor, fake: torch.Tensor, real_target: float, **_) -> torch.Tensor:
    """softplus(f - r) over pairs: D wants each real to score above the fake beside it
    (Jolicoeur-Martineau 2018, RSGAN; Huang et al. 2024, RpGAN)."""
    return F.softplus(fake - real).mean()


def _rp_g(fake: torch.Tensor, real: torch.Tensor, **_) -> torch.Tensor:
    """softplus(r - f) over pairs: G wants each fake to score above its real."""
    return F.softplus(real - fake).mean()


def _ra_margins(real: torch.Tensor, fake: torch.Tensor, batch_mean) -> tuple:
    """Each real against the mean fake, and each fake against the mean real."""
    return real - batch_mean(fake), fake - batch_mean(real)


def _ra_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean=torch.mean
) -> torch.Tensor:
    """softplus(-(r - mean f)) + softplus(f - mean r): each sample against the other side's
    batch mean (Jolicoeur-Martineau 2018, RaSGAN)."""
    r, f = _ra_margins(real, fake, batch_mean)
    return F.softplus(-r).mean() + F.softplus(f).mean()


def _ra_g(fake: torch.Tensor, real: torch.Tensor, batch_mean=torch.mean) -> torch.Tensor:
    """The D loss with the roles of real and fake swapped."""
    return _ra_d(fake, real, 1.0, batch_mean)


def _rals_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean=torch.mean
) -> torch.Tensor:
    """(r - mean f - 1)² + (f - mean r + 1)² (Jolicoeur-Martineau 2018, RaLSGAN)."""
    r, f = _ra_margins(real, fake, batch_mean)
    return (r - 1.0).square().mean() + (f + 1.0).square().mean()


def _rals_g(fake: torch.Tensor, real: torch.Tensor, batch_mean=torch.mean) -> torch.Tensor:
    """The D loss with the roles of real and fake swapped."""
    return _rals_d(fake, real, 1.0, batch_mean)


def _rahinge_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: float, batch_mean=torch.mean
) -> torch.Tensor:
    """max(0, 1 - (r - mean f)) + max(0, 1 + (f - mean r)) (Jolicoeur-Martineau 2018,
    RaHingeGAN)."""
    r, f = _ra_margins(real, fake, batch_mean)
    return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()


def _rahinge_g(fake: torch.Tensor, real: torch.Tensor, batch_mean=torch.mean) -> torch.Tensor:
    """The D loss with the roles of real and fake swapped."""
    return _rahinge_d(fake, real, 1.0, batch_mean)


LOSSES.register("minimax")(GANLoss("minimax", _bce_d, _minimax_g, True, True))
LOSSES.register("ns")(GANLoss("ns", _bce_d, _ns_g, True, True))
LOSSES.register("lsgan")(GANLoss("lsgan", _lsgan_d, _lsgan_g, False, True))
LOSSES.register("hinge")(
    GANLoss("hinge", _hinge_d, _wasserstein_g, False, False, zero_when_d_wins=True)
)
LOSSES.register("wgan")(
    GANLoss("wgan", _wasserstein_d, _wasserstein_g, False, False, weight_clip=0.01)
)
LOSSES.register("wgan-gp")(
    GANLoss("wgan-gp", _wasserstein_d, _wasserstein_g, False, False, gradient_penalty=True)
)

for _name, _d, _g, _zero in (
    ("rpgan", _rp_d, _rp_g, True),
    ("ragan", _ra_d, _ra_g, True),
    ("rahinge", _rahinge_d, _rahinge_g, True),
    ("ralsgan", _rals_d, _rals_g, False),  # its D loss is 0 at margins of exactly 1, not beyond
):
    LOSSES.register(_name)(
        GANLoss(_name, _d, _g, False, False, relativistic=True, zero_when_d_wins=_zero)
    )


def _input_grad_norm_sq(D, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """‖∂D(x, y)/∂x‖² per sample, over all non-batch dims; keeps the graph (double backward)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


def gradient_penalty(
    D,
    real: torch.Tensor,
    fake: torch.Tensor,
    y: torch.Tensor | None,
    generator: torch.Generator | None = None,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean (‖∇D(x̂)‖₂ - 1)² at x̂ = εx + (1-ε)G(z), ε ~ U[0,1] per sample (Gulrajani et al.
    2017, WGAN-GP), ε drawn from `generator` unless given (B×1×1×1). Multiply by λ (10 in the
    paper) outside."""
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    norm = (_input_grad_norm_sq(D, x_hat, y) + 1e-12).sqrt()
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(D, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """mean ‖∇D(x)‖² over a batch, taken detached: R1 on real data, R2 on generated data
    (Mescheder et al. 2018). Multiply by γ/2 outside."""
    return _input_grad_norm_sq(D, x, y).mean()
