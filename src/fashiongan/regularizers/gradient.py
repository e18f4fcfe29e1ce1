"""R1 and R2: zero-centred gradient penalties on real and on generated images (Mescheder et al.
2018; R2 with R1 as in Roth et al. 2017 and R3GAN, Huang et al. 2024)."""

from fashiongan.losses.penalties import r1_penalty
from fashiongan.regularizers.base import REGULARIZERS, Regularizer

REGULARIZERS.register("r1")(
    Regularizer(
        "r1",
        "γ/2·‖∇D(x)‖² on real images (--r1 γ)",
        lambda D, real, fake, y, uniform: r1_penalty(D, real, y),
        lambda cfg: cfg.loss.r1,
        flag="--r1",
    )
)
REGULARIZERS.register("r2")(
    Regularizer(
        "r2",
        "γ/2·‖∇D(G(z))‖² on generated images (--r2 γ)",
        lambda D, real, fake, y, uniform: r1_penalty(D, fake, y),
        lambda cfg: cfg.loss.r2,
        flag="--r2",
    )
)
