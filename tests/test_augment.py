"""DiffAugment (--augment diffaug): each transform by what it must do, differentiability, and a
training run that is seeded and resumes exactly."""

import pytest
import torch

from fashiongan.errors import FashionGANError
from fashiongan.training.augment import _color, _cutout, _translation, diff_augment
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
    assert torch.equal(_translation(x, fixed_ints(1, 1)), x)
    down = _translation(x, fixed_ints(2, 1))
    assert torch.equal(down[0, 0, 1:], x[0, 0, :-1]) and (down[0, 0, 0] == -1).all()
    left = _translation(x, fixed_ints(1, 0))
    assert torch.equal(left[0, 0, :, :-1], x[0, 0, :, 1:]) and (left[0, 0, :, -1] == -1).all()


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(3, 1, 8, 8)
    out = _cutout(x, fixed_ints(4, 4))  # centred: the whole 4×4 square is inside
    assert (out == 0).sum().item() == 3 * 16 and set(out.unique().tolist()) == {0.0, 1.0}
    corner = _cutout(x, fixed_ints(0, 0))  # clipped by the border
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
