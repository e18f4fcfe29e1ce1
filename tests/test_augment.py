"""DiffAugment (--augment diffaug): each transform by what it must do, differentiability, and a
training run that is seeded and resumes exactly."""

import json

import pytest
import torch

from fashiongan.checkpoint import load_checkpoint
from fashiongan.errors import FashionGANError
from fashiongan.training.ada import ADA, ada_augment
from fashiongan.training.augment import _color, cutout, diff_augment, translation
from fashiongan.training.loop import Trainer, train
from fashiongan.training.step import check_graphable
from test_training import assert_same, tiny, weights


def draws(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        lambda shape: torch.rand(shape, generator=g),
        lambda high, shape: torch.randint(high, shape, generator=g),
    )


def fixed_ints(*values):
    """randint that hands out the given values, one call each, for every sample."""
    it = iter(values)
    return lambda high, shape: torch.full(shape, next(it))


def test_translation_moves_whole_pixels_and_fills_black():
    """At 4 px the largest shift is round(4 / 8) = 1: a draw d in 0..2 shifts by d - 1."""
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    assert torch.equal(translation(x, fixed_ints(1, 1)), x)
    down = translation(x, fixed_ints(2, 1))
    assert torch.equal(down[0, 0, 1:], x[0, 0, :-1]) and (down[0, 0, 0] == -1).all()
    left = translation(x, fixed_ints(1, 0))
    assert torch.equal(left[0, 0, :, :-1], x[0, 0, :, 1:]) and (left[0, 0, :, -1] == -1).all()


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(3, 1, 8, 8)
    out = cutout(x, fixed_ints(4, 4))  # centred: the whole 4×4 square is inside
    assert (out == 0).sum().item() == 3 * 16 and set(out.unique().tolist()) == {0.0, 1.0}
    corner = cutout(x, fixed_ints(0, 0))  # clipped by the border
    assert 0 < (corner == 0).sum().item() < 3 * 16


def test_color_shifts_brightness_and_scales_contrast_about_the_mean():
    x = torch.linspace(-1, 1, 16).view(1, 1, 4, 4)
    values = iter([torch.full((1, 1, 1, 1), v) for v in (0.75, 1.0)])  # +0.25, contrast ×1.5
    out = _color(x, lambda shape: next(values))
    assert out.mean().item() == pytest.approx(x.mean().item() + 0.25, abs=1e-6)
    assert out.std().item() == pytest.approx(1.5 * x.std().item(), rel=1e-5)


def test_diff_augment_is_seeded_and_differentiable():
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    a, b = diff_augment(x, *draws(1)), diff_augment(x, *draws(1))
    assert torch.equal(a, b) and not torch.equal(a, diff_augment(x, *draws(2)))
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_training_with_diffaug_is_seeded_resumes_exactly_and_changes_training(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=6, augment="diffaug")
    cfg.log.ckpt_every = 3
    a = train(cfg, tmp_path / "a")
    assert_same(weights(a.final_checkpoint), weights(train(cfg, tmp_path / "b").final_checkpoint))
    cfg.train.steps = 3
    train(cfg, tmp_path / "r")
    cfg.train.steps = 6
    resumed = train(cfg, tmp_path / "r", resume=True)
    assert_same(weights(a.final_checkpoint), weights(resumed.final_checkpoint))
    plain = train(tiny(idx_dir, steps=6), tmp_path / "plain")
    assert not torch.equal(
        weights(a.final_checkpoint)["D.fc.weight"], weights(plain.final_checkpoint)["D.fc.weight"]
    )
    assert (
        "DiffAugment"
        in Trainer(tiny(idx_dir, steps=1, augment="diffaug"), tmp_path / "d").describe()
    )


def test_cuda_graph_refuses_augmentation(idx_dir):
    with pytest.raises(FashionGANError, match="--augment diffaug"):
        check_graphable(tiny(idx_dir, steps=1, augment="diffaug"), torch.device("cuda"))


def test_ada_p_follows_the_overfitting_signal_every_four_steps():
    def run(signs, fixed=None):
        ada = ADA("cpu", batch=100, target=0.6, kimg=1.0, fixed=fixed)  # a move of 0.4
        ps = []
        for s in signs:
            ada.observe(torch.full((100,), float(s)), torch.mean)
            ps.append(round(ada.p.item(), 6))
        return ps

    assert run([1] * 8) == [0, 0, 0, 0.4, 0.4, 0.4, 0.4, 0.8]  # D overfits: p rises
    assert run([1] * 4 + [-1] * 8)[-1] == 0.0  # D does not: p falls, clamped at 0
    assert run([1] * 40)[-1] == 1.0  # and at 1
    # the signal is the mean sign over the interval: 3 of 4 batches positive → r = 0.5 < 0.6
    assert run([1, 1, 1, -1]) == [0, 0, 0, 0]
    assert run([1] * 8, fixed=0.3) == [0.3] * 8  # --augment-p fixes it


def test_ada_augment_is_identity_at_p_0_changes_every_image_at_p_1_and_is_differentiable():
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_()
    assert torch.equal(ada_augment(x, torch.tensor(0.0), *draws(0)), x)
    out = ada_augment(x, torch.tensor(1.0), *draws(0))
    assert all(not torch.equal(out[i], x[i]) for i in range(6))
    assert torch.equal(out, ada_augment(x, torch.tensor(1.0), *draws(0)))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    half = ada_augment(x, torch.tensor(0.5), *draws(3))
    changed = [not torch.equal(half[i], x[i]) for i in range(6)]
    assert any(changed)


def test_training_with_ada_resumes_exactly_mid_interval_with_p_logged_and_saved(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=10, augment="ada", ada_kimg=0.2)  # p moves 0.32 per adjustment
    cfg.log.ckpt_every = 5
    a = train(cfg, tmp_path / "a")
    cfg.train.steps = 5  # 5 = one adjustment and one step into the next interval
    train(cfg, tmp_path / "r")
    cfg.train.steps = 10
    resumed = train(cfg, tmp_path / "r", resume=True)
    assert_same(weights(a.final_checkpoint), weights(resumed.final_checkpoint))
    state = load_checkpoint(a.final_checkpoint)
    assert state["ada"] == load_checkpoint(resumed.final_checkpoint)["ada"]
    rows = [json.loads(r) for r in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    ps = [r["augment_p"] for r in rows if "augment_p" in r]
    assert len(ps) == 5 and ps[-1] == pytest.approx(state["ada"]["p"])
    with pytest.raises(FashionGANError, match="--augment ada"):
        check_graphable(tiny(idx_dir, steps=1, augment="ada"), torch.device("cuda"))
