"""Differentiable augmentation of everything D sees (DiffAugment; Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"): real and generated images alike, in D's and in
G's updates, so D cannot memorise a small training set and G still gets gradients through the
augmentation. The `color,translation,cutout` policy of the paper:

- color: brightness + U(-0.5, 0.5), contrast × U(0.5, 1.5) about each image's mean (and, for
  colour images, saturation × U(0, 2) about each pixel's channel mean);
- translation: a shift of up to 1/8 of the side in each direction, whole pixels, the uncovered
  border filled with -1 (black: the background of Fashion-MNIST-like images, where the paper's
  code fills 0, mid-grey in [-1, 1]);
- cutout: one square of half the side, at a random place, set to 0.

Every draw comes from the step's seeded generator, for the global batch (each rank keeps its
rows), so a resumed run continues bit for bit. R1 and R2 are taken on the images before
augmentation.
"""

import torch

TRANSLATION, CUTOUT = 0.125, 0.5


def diff_augment(x: torch.Tensor, rand, randint) -> torch.Tensor:
    """x: float B×C×H×W in [-1, 1]. rand(shape) → U[0, 1) and randint(high, shape) → integers,
    both per sample of the batch (see TrainingStep.uniform)."""
    x = _color(x, rand)
    x = translation(x, randint)
    return cutout(x, randint)


def _color(x, rand):
    B = x.shape[0]
    x = x + (rand((B, 1, 1, 1)) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (rand((B, 1, 1, 1)) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (rand((B, 1, 1, 1)) + 0.5) + mean


def translation(x, randint):
    B, _, H, W = x.shape
    sh, sw = int(H * TRANSLATION + 0.5), int(W * TRANSLATION + 0.5)
    dy = randint(2 * sh + 1, (B, 1, 1)) - sh
    dx = randint(2 * sw + 1, (B, 1, 1)) - sw
    rows = torch.arange(H, device=x.device)[None, :, None] - dy  # the source row of each pixel
    cols = torch.arange(W, device=x.device)[None, None, :] - dx
    inside = ((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W))[:, None]
    index = (rows.clamp(0, H - 1) * W + cols.clamp(0, W - 1)).flatten(1)  # B × HW
    moved = x.flatten(2).gather(2, index[:, None].expand(-1, x.shape[1], -1)).view_as(x)
    return torch.where(inside, moved, torch.full_like(moved, -1.0))


def cutout(x, randint):
    B, _, H, W = x.shape
    ch, cw = int(H * CUTOUT + 0.5), int(W * CUTOUT + 0.5)
    top = randint(H, (B, 1, 1)) - ch // 2  # centred on a random pixel, clipped by the border
    left = randint(W, (B, 1, 1)) - cw // 2
    rows = torch.arange(H, device=x.device)[None, :, None]
    cols = torch.arange(W, device=x.device)[None, None, :]
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~hole[:, None]).to(x.dtype)
