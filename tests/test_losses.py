"""Every loss against a value computed by hand, and the gradient penalties in closed form."""

import math

import pytest
import torch

from fashiongan.config import RunConfig
from fashiongan.errors import FashionGANError
from fashiongan.losses import LOSSES, gradient_penalty, r1_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sp(v):  # softplus
    return math.log1p(math.exp(v))


BCE_D = ((sp(-2.0) + sp(1.0)) / 2) + ((sp(0.5) + sp(-3.0)) / 2)
EXPECTED = {
    # name: (D loss, G loss) at REAL, FAKE with no smoothing
    "minimax": (BCE_D, -(sp(0.5) + sp(-3.0)) / 2),
    "ns": (BCE_D, (sp(-0.5) + sp(3.0)) / 2),
    "lsgan": (
        0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + 0.5 * (0.25 + 9) / 2,
        0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2,
    ),
    "hinge": ((0 + 2) / 2 + (1.5 + 0) / 2, -(0.5 - 3) / 2),
    "wgan": ((0.5 - 3) / 2 - (2 - 1) / 2, 1.25),
    "wgan-gp": ((0.5 - 3) / 2 - (2 - 1) / 2, 1.25),
    "wgan-lp": ((0.5 - 3) / 2 - (2 - 1) / 2, 1.25),  # its own part is the penalty, below
    # relativistic: pairs (2, 0.5) and (-1, -3); means r̄ = 0.5, f̄ = -1.25
    "rpgan": ((sp(0.5 - 2) + sp(-3 + 1)) / 2, (sp(2 - 0.5) + sp(-1 + 3)) / 2),
    "ragan": (
        (sp(-1.25 - 2) + sp(-1.25 + 1)) / 2 + (sp(0.5 - 0.5) + sp(-3 - 0.5)) / 2,
        (sp(0.5 - 0.5) + sp(0.5 + 3)) / 2 + (sp(2 + 1.25) + sp(-1 + 1.25)) / 2,
    ),
    # margins: reals against f̄, r - f̄ = (3.25, 0.25); fakes against r̄, f - r̄ = (0, -3.5)
    "ralsgan": (
        ((3.25 - 1) ** 2 + (0.25 - 1) ** 2) / 2 + ((0 + 1) ** 2 + (-3.5 + 1) ** 2) / 2,
        ((0 - 1) ** 2 + (-3.5 - 1) ** 2) / 2 + ((3.25 + 1) ** 2 + (0.25 + 1) ** 2) / 2,
    ),
    "rahinge": (
        (max(0, 1 - 3.25) + max(0, 1 - 0.25)) / 2 + (max(0, 1 + 0) + max(0, 1 - 3.5)) / 2,
        (max(0, 1 - 0) + max(0, 1 + 3.5)) / 2 + (max(0, 1 + 3.25) + max(0, 1 + 0.25)) / 2,
    ),
}


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_values_by_hand(name):
    loss = LOSSES.get(name)
    d, g = EXPECTED[name]
    assert loss.d_loss(REAL, FAKE, 1.0).item() == pytest.approx(d, rel=1e-6)
    g_args = (FAKE, REAL) if loss.relativistic else (FAKE,)
    assert loss.g_loss(*g_args).item() == pytest.approx(g, rel=1e-6)


def test_every_registered_loss_has_a_hand_value():
    assert set(LOSSES.names()) == set(EXPECTED)


def test_label_smoothing_targets():
    t = 0.9
    bce = -(
        t * math.log(1 / (1 + math.exp(-2.0))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-2.0)))
    )
    bce += -(
        t * math.log(1 / (1 + math.exp(1.0))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(1.0)))
    )
    expected = bce / 2 + (sp(0.5) + sp(-3.0)) / 2
    assert LOSSES.get("ns").d_loss(REAL, FAKE, t).item() == pytest.approx(expected, rel=1e-6)
    lsgan = 0.5 * ((2 - t) ** 2 + (-1 - t) ** 2) / 2 + 0.5 * (0.25 + 9) / 2
    assert LOSSES.get("lsgan").d_loss(REAL, FAKE, t).item() == pytest.approx(lsgan, rel=1e-6)
    assert not LOSSES.get("hinge").smoothable and LOSSES.get("ns").smoothable


def test_wgan_flags():
    assert LOSSES.get("wgan").weight_clip == 0.01 and not LOSSES.get("wgan").gradient_penalty
    assert LOSSES.get("wgan-gp").gradient_penalty and LOSSES.get("wgan-gp").weight_clip is None


class Linear(torch.nn.Module):
    """D(x) = <w, x> + y·c: its input gradient is w everywhere, so the penalties are closed-form."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, y=None):
        return (x * self.w).flatten(1).sum(1) + (0 if y is None else y.float())


def test_gradient_penalty_closed_form():
    w = torch.full((1, 2, 2), 1.5)  # ‖w‖ = 3 over all non-batch dims
    D = Linear(w)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    gp = gradient_penalty(D, real, fake, torch.arange(4))
    assert gp.item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-5)
    gp.backward()  # double backward reaches D's weights: d/dw (‖w‖-1)² = 2(‖w‖-1) w/‖w‖
    assert torch.allclose(D.w.grad, 2 * 2 * w / 3.0, rtol=1e-4)
    assert r1_penalty(D, real, None).item() == pytest.approx(9.0, rel=1e-5)


def test_wgan_lp_penalises_only_gradients_above_one():
    """WGAN-LP's penalty is WGAN-GP's above norm 1 and zero below it (Petzka et al. 2018)."""
    cfg = RunConfig()
    cfg.loss.gp_weight = 1.0
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)

    def uniform(shape):
        return torch.rand(shape, generator=torch.Generator().manual_seed(0))

    gp, lp = LOSSES.get("wgan-gp"), LOSSES.get("wgan-lp")
    steep = Linear(torch.full((1, 2, 2), 1.5))  # ‖∇D‖ = 3 everywhere
    assert lp.penalty(steep, real, fake, None, cfg, uniform).item() == pytest.approx(4.0, rel=1e-5)
    assert gp.penalty(steep, real, fake, None, cfg, uniform).item() == pytest.approx(4.0, rel=1e-5)
    gentle = Linear(torch.full((1, 2, 2), 0.25))  # ‖∇D‖ = 0.5
    assert lp.penalty(gentle, real, fake, None, cfg, uniform).item() == 0.0
    assert gp.penalty(gentle, real, fake, None, cfg, uniform).item() == pytest.approx(0.25)
    cfg.loss.gp_weight = 10.0  # the weight is the config's
    assert lp.penalty(steep, real, fake, None, cfg, uniform).item() == pytest.approx(40.0)


def test_the_losses_without_a_penalty_have_none():
    cfg = RunConfig()
    D = Linear(torch.ones(1, 2, 2))
    x = torch.randn(2, 1, 2, 2)
    for name in ("ns", "hinge", "ragan", "wgan"):
        assert LOSSES.get(name).penalty(D, x, x, None, cfg, torch.rand) is None


def test_wgan_clip_default_is_the_loss_papers_value():
    """--weight-clip's default and the WGAN loss's stated clip are the same number."""
    assert RunConfig().loss.weight_clip == LOSSES.get("wgan").weight_clip


def test_unknown_loss():
    with pytest.raises(FashionGANError, match="unknown loss 'bce'; choose one of: minimax, ns"):
        LOSSES.get("bce")
