"""Sampling from a trained generator: seeded latents, class × seed grids and latent walks.
Image encoding (grids, PNG, GIF) lives in fashiongan.imaging, data-set export in
fashiongan.dataset_export.

Images leave this module as uint8 N×H×W (0 = black background, as in Fashion-MNIST).
"""

import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fashiongan.checkpoint import load_checkpoint, load_weights, resolve_checkpoint, upgrade
from fashiongan.data.datasets import parse_class, to_uint8
from fashiongan.errors import FashionGANError
from fashiongan.imaging import display_scale, label_rows, make_grid
from fashiongan.model_card import is_model_dir, weights_of
from fashiongan.model_export import is_portable, read_generator
from fashiongan.models.build import generator_from_state


def latents(seeds: list[int] | int, n: int | None, z_dim: int, device="cpu") -> torch.Tensor:
    """z ~ N(0, I). With a list of seeds, one latent per seed (z_i depends on seeds[i] alone);
    with a single seed, n latents from one stream."""
    if isinstance(seeds, int):
        g = torch.Generator().manual_seed(seeds)
        return torch.randn(n, z_dim, generator=g).to(device)
    return torch.stack(
        [torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    ).to(device)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b at fractions t (shape (T,)) → T×D."""
    a_n, b_n = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    omega = torch.acos((a_n * b_n).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def recalibrate_batchnorm(
    G: torch.nn.Module,
    n_classes: int,
    z_dim: int,
    batches: int = 8,
    batch_size: int = 256,
    seed: int = 12345,
) -> None:
    """Re-estimate G's BatchNorm running statistics with its current weights (needed for
    G_ema, whose weights are averaged but whose statistics were tracked by G). Seeded."""
    norms = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    device = next(G.parameters()).device
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    G.train()
    g = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        z = torch.randn(batch_size, z_dim, generator=g).to(device)
        y = torch.randint(n_classes, (batch_size,), generator=g).to(device)
        G(z, y)
    G.eval()
    for m, (momentum, _) in zip(norms, saved):
        m.momentum = momentum


@dataclass
class LoadedGenerator:
    """A generator ready to sample. `.sample(...)` returns uint8 N×H×W numpy arrays."""

    G: torch.nn.Module
    class_names: tuple[str, ...]
    z_dim: int
    conditional: bool
    resolution: int
    step: int
    config: dict
    device: torch.device

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def labels(
        self,
        classes: list[str | int] | None = None,
        n: int | None = None,
        per_class: int | None = None,
    ) -> torch.Tensor | None:
        """Labels for a request: per_class of each given class (all when none given), or n
        cycling over them. None for an unconditional model (and an error if classes given)."""
        if not self.conditional:
            if classes:
                raise FashionGANError(
                    "--class needs a conditional model; this one was trained with --cond none"
                )
            if per_class:
                raise FashionGANError(
                    "--per-class needs a conditional model; this one was trained with --cond "
                    "none (use --num-samples)"
                )
            return None
        ids = (
            [parse_class(c, self.class_names) for c in classes]
            if classes
            else list(range(self.n_classes))
        )
        ids_t = torch.tensor(ids, dtype=torch.int64)
        if per_class:
            return ids_t.repeat_interleave(per_class)
        return ids_t.repeat(math.ceil((n or len(ids)) / len(ids)))[: n or len(ids)]

    @torch.no_grad()
    @property
    def image_shape(self) -> tuple[int, ...]:
        """(H, W) for grayscale, (C, H, W) for colour: one image of `images`."""
        channels = self.G.channels
        return ((channels,) if channels != 1 else ()) + (self.resolution, self.resolution)

    def images(
        self, z: torch.Tensor, y: torch.Tensor | None, batch_size: int = 1000
    ) -> torch.Tensor:
        """uint8 N×H×W (colour: N×3×H×W) tensor for latents z (N×z_dim) and labels y (int64 N
        or float N×C)."""
        out = []
        for i in range(0, len(z), batch_size):
            yb = None if y is None else y[i : i + batch_size].to(self.device)
            out.append(to_uint8(self.G(z[i : i + batch_size].to(self.device), yb)).cpu())
        return torch.cat(out) if out else torch.zeros(0, *self.image_shape, dtype=torch.uint8)

    def sample(
        self, n: int, labels=None, seed: int | None = None, batch_size: int = 1000
    ) -> np.ndarray:
        """n images as uint8 N×H×W. labels: None (classes cycle 0..C-1 for a conditional
        model), or a sequence of class names/ids of length n. seed: an int gives the same
        images every time; None draws a fresh seed."""
        if labels is not None and not self.conditional:
            raise FashionGANError("labels given to an unconditional generator")
        if labels is None:
            y = self.labels(n=n)
        else:
            y = torch.tensor([parse_class(c, self.class_names) for c in labels])
            if len(y) != n:
                raise FashionGANError(f"{len(y)} labels given for n={n} samples")
        seed = secrets.randbelow(2**31) if seed is None else seed  # leaves torch RNG alone
        return self.images(latents(seed, n, self.z_dim), y, batch_size).numpy()

    def grid(self, seeds: int | list[int] = 10, classes=None) -> Image.Image:
        """The class × seed grid the training run draws (rows: classes, columns: seeds; the
        same z down a column), as a PIL image that a notebook shows inline."""
        seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        ids = None if classes is None else [parse_class(c, self.class_names) for c in classes]
        return class_seed_grid(self, seeds, ids)


def load_generator(
    path: str | os.PathLike, ema: bool = True, device: str | torch.device = "cpu"
) -> LoadedGenerator:
    """A run directory, checkpoint, exported .safetensors or model directory (`export --format
    dir`) → LoadedGenerator (G_ema when present and ema=True)."""
    if is_model_dir(Path(path)):
        path = weights_of(Path(path))
    if is_portable(Path(path)):
        ckpt_path, state = Path(path), upgrade(read_generator(path))
    else:
        ckpt_path = resolve_checkpoint(path)
        state = load_checkpoint(ckpt_path)
    G, cfg = generator_from_state(state, str(ckpt_path))
    class_names, m = tuple(state["class_names"]), cfg.model
    weights = state["G_ema"] if ema and state["G_ema"] is not None else state["G"]
    load_weights(G, weights, str(ckpt_path), f"model {m.model} (cond={m.cond}, width={m.width})")
    dev = torch.device(device)
    return LoadedGenerator(
        G.to(dev, memory_format=torch.channels_last).eval(),  # as trained; faster convs
        class_names,
        m.z_dim,
        m.cond != "none",
        G.spec.resolution,
        int(state["step"]),
        state["config"],
        dev,
    )


def class_seed_grid(
    gen: LoadedGenerator, seeds: list[int], classes: list[int] | None = None
) -> Image.Image:
    """Rows = classes, columns = seeds (the same z across a column), labelled; a plain grid of
    len(seeds) × len(seeds) samples when unconditional."""
    z = latents(seeds, None, gen.z_dim)
    if not gen.conditional:
        zz = latents([s * 1009 + k for k in range(len(seeds)) for s in seeds], None, gen.z_dim)
        return Image.fromarray(make_grid(gen.images(zz, None).numpy(), len(seeds)))
    classes = list(range(gen.n_classes)) if classes is None else classes
    y = torch.tensor(classes).repeat_interleave(len(seeds))
    imgs = gen.images(z.repeat(len(classes), 1), y).numpy()
    scale = display_scale(gen.resolution)
    return label_rows(
        make_grid(imgs, len(seeds)),
        [gen.class_names[c] for c in classes],
        gen.resolution,
        scale=scale,
    )


def interpolation_frames(
    gen: LoadedGenerator,
    seeds: list[int],
    classes: list[int] | None,
    steps: int,
    mode: str = "slerp",
) -> torch.Tensor:
    """uint8 W×T×H×W' tensor: W walks of T frames. A walk goes from seeds[i] to seeds[i+1]
    (class fixed to classes[0] if one class is given); with two or more classes and one seed,
    from classes[i] to classes[i+1] with z fixed (soft labels)."""
    if mode not in ("lerp", "slerp"):
        raise FashionGANError(f"unknown --mode {mode!r}; choose lerp or slerp")
    if steps < 2:
        raise FashionGANError(f"--steps {steps}: need at least 2 frames")
    t = torch.linspace(0, 1, steps)
    walks = []
    if classes and len(classes) >= 2:
        if not gen.conditional:
            raise FashionGANError("interpolating between classes needs a conditional model")
        eye = torch.eye(gen.n_classes)
        for s in seeds:
            z = latents([s], None, gen.z_dim).repeat(steps, 1)
            for a, b in zip(classes, classes[1:]):
                y = (1 - t)[:, None] * eye[a] + t[:, None] * eye[b]
                walks.append(gen.images(z, y))
        return torch.stack(walks)
    if len(seeds) < 2:
        raise FashionGANError("give at least two --seeds (or two --class values to walk between)")
    if classes and not gen.conditional:
        raise FashionGANError(
            "--class needs a conditional model; this one was trained with --cond none"
        )
    zs = latents(seeds, None, gen.z_dim)
    for a, b in zip(zs, zs[1:]):
        z = slerp(a[None], b[None], t) if mode == "slerp" else (1 - t)[:, None] * a + t[:, None] * b
        rows = (
            [classes[0]] if classes else (list(range(gen.n_classes)) if gen.conditional else [None])
        )
        for c in rows:
            y = None if c is None else torch.full((steps,), c, dtype=torch.int64)
            walks.append(gen.images(z, y))
    return torch.stack(walks)
