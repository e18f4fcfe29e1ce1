"""R1 and R2: zero-centred gradient penalties on real and on generated images (Mescheder et al.
2018; R2 with R1 as in Roth et al. 2017 and R3GAN, Huang et al. 2024)."""

from fashiongan.losses.penalties import r1_penalty
from fashiongan.regularizers.base import REGULARIZERS, Regularizer


def _on_reals(D, real, fake, y, uniform):
    return r1_penalty(D, real, y)


def _on_fakes(D, real, fake, y, uniform):
    return r1_penalty(D, fake, y)


for _name, _what, _penalty in (("r1", "real images", _on_reals), ("r2", "fakes", _on_fakes)):
    REGULARIZERS.register(_name)(
        Regularizer(
            _name,
            f"γ/2·‖∇D‖² on {_what} (--{_name} γ)",
            _penalty,
            lambda cfg, field=_name: getattr(cfg.loss, field),
            flag=f"--{_name}",
        )
    )
