"""Gradient penalties on D's input gradient, shared by the losses and regularisers that use them."""

import torch


def input_grad_norm_sq(D, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
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
    return two_sided(interpolate_norm(D, real, fake, y, generator, eps))


def interpolate_norm(D, real, fake, y, generator=None, eps=None) -> torch.Tensor:
    """‖∇D(x̂)‖₂ per sample at random interpolates x̂ = εx + (1-ε)G(z)."""
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    return (input_grad_norm_sq(D, x_hat, y) + 1e-12).sqrt()


def two_sided(norm: torch.Tensor) -> torch.Tensor:
    """mean (‖∇‖ - 1)²: pulls every gradient norm to 1 (Gulrajani et al. 2017)."""
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(D, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """mean ‖∇D(x)‖² over a batch, taken detached: R1 on real data, R2 on generated data
    (Mescheder et al. 2018). Multiply by γ/2 outside."""
    return input_grad_norm_sq(D, x, y).mean()
