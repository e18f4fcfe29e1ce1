"""DRAGAN (Kodali et al. 2017, "On convergence and stability of GANs"): λ·(‖∇D(x̃)‖ - 1)² at
x̃ = x + 0.5·std(x)·u, u ~ U[0, 1) per pixel: D's gradient is kept near norm 1 in a band around
the real images, where mode collapse begins. Use it with any loss: --reg dragan=10 (the paper's
λ); it is lazy like R1 (every --r1-every steps, weighted by that many)."""

import torch

from fashiongan.losses.penalties import input_grad_norm_sq
from fashiongan.regularizers.base import REGULARIZERS, Regularizer, strength_from_reg


def dragan_penalty(D, real, fake, y, uniform) -> torch.Tensor:
    perturbed = real + 0.5 * real.std() * uniform(tuple(real.shape))
    norm = (input_grad_norm_sq(D, perturbed, y) + 1e-12).sqrt()
    return ((norm - 1.0) ** 2).mean()


REGULARIZERS.register("dragan")(
    Regularizer(
        "dragan",
        "λ·(‖∇D(x + noise)‖ - 1)² around the real images (--reg dragan=λ; Kodali et al. 2017)",
        dragan_penalty,
        strength_from_reg("dragan"),
        halved=False,
        draws=True,
    )
)
