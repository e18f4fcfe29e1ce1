"""`fashiongan augment-gain`: does GAN-synthetic data help a classifier that has only K real
images per class? For each K and seed: take a seeded class-balanced subset of K real images per
class, train a conditional GAN on exactly those images, then train one fixed classifier on the K
real images alone and another, identical, on the K real plus S generated images per class, and
score both on the real test split (or the held-out part of a set without one). Both classifiers
take the same number of optimiser steps, so the synthetic images add data, not compute.

The classifier is CAS's recipe (metrics/cas.py: one 3×3 conv per stage, 128 features, no flips),
the same for every K, arm and seed; its input is the data's channels and side.
"""

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fashiongan.config import RunConfig, from_dict, load_preset, to_dict
from fashiongan.data.datasets import ImageDataset, load_dataset, own_options
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_write_bytes
from fashiongan.metrics.cas import CAS_RECIPE
from fashiongan.metrics.evaluator import accuracy, train_classifier
from fashiongan.models.registry import MODELS
from fashiongan.sampling import load_generator

CLASSIFIER_STEPS = 1000  # optimiser steps of each classifier, whatever its training set's size


@dataclasses.dataclass
class GainPlan:
    per_class: tuple[int, ...] = (10, 50, 100, 600)
    seeds: tuple[int, ...] = (0, 1, 2)
    synthetic_per_class: int = 500
    classifier_steps: int = CLASSIFIER_STEPS


def base_config(cfg: RunConfig | None, gan_kimg: float) -> RunConfig:
    """The GAN recipe: `cfg` (default: the `small-data` preset) for gan_kimg thousand images,
    no periodic evaluation, no progress bar."""
    cfg = cfg or from_dict(load_preset("small-data"), "preset small-data")
    cfg.train.kimg, cfg.train.epochs, cfg.train.steps, cfg.train.max_time = gan_kimg, 0, 0, 0.0
    cfg.log.eval_every, cfg.log.progress = 0, False
    if cfg.model.cond == "none":
        raise FashionGANError("augment-gain samples images per class: --cond none cannot")
    return cfg


def _classifier(images, labels, steps: int, shape: dict) -> torch.nn.Module:
    """CAS's recipe for `steps` optimiser steps (whole epochs, the last one cut by none)."""
    per_epoch = math.ceil(len(images) / CAS_RECIPE.batch_size)
    recipe = dataclasses.replace(CAS_RECIPE, epochs=max(1, round(steps / per_epoch)))
    return train_classifier(images, labels, recipe, shape=shape)


def _same_recipe(checkpoint: Path, cfg: RunConfig) -> bool:
    from fashiongan.checkpoint import load_checkpoint

    saved = load_checkpoint(checkpoint)["config"]
    return saved == to_dict(cfg)


def one_cell(cfg: RunConfig, k: int, seed: int, plan: GainPlan, test: ImageDataset, out: Path,
             log: Callable[[str], None]) -> dict:  # fmt: skip
    """Train the GAN on K real images per class (seed), then both classifiers; their test
    accuracies."""
    from fashiongan.training.loop import train

    cfg = from_dict(to_dict(cfg), "augment-gain")
    n_classes = test.n_classes
    cfg.data.subset, cfg.train.seed = k * n_classes, seed
    cfg.train.batch_size = min(cfg.train.batch_size, k * n_classes)
    resolution = MODELS.get(cfg.model.model).resolution
    real = load_dataset(
        cfg.data.data, cfg.data.split, k * n_classes, seed, resolution,
        **own_options(cfg.data, out / "cache"),
    )  # fmt: skip
    start = time.perf_counter()
    run_dir = out / f"gan-k{k}-s{seed}"
    final = run_dir / "checkpoints" / "final.pt"
    if final.is_file() and _same_recipe(final, cfg):  # another plan over the same GANs
        log(f"K={k} seed {seed}: reusing the GAN in {run_dir}")
    else:
        train(cfg, run_dir)
    gen = load_generator(final)
    labels = torch.arange(n_classes).repeat_interleave(plan.synthetic_per_class)
    fake = torch.from_numpy(gen.sample(len(labels), labels.tolist(), seed=seed + 1))
    shape = {"channels": test.channels, "size": resolution, "n_classes": n_classes}
    steps = plan.classifier_steps
    alone = _classifier(real.images, real.labels, steps, shape)
    mixed = _classifier(
        torch.cat([real.images, fake]), torch.cat([real.labels, labels]), steps, shape
    )
    cell = {
        "per_class": k,
        "seed": seed,
        "real_only": accuracy(alone, test.images, test.labels),
        "real_plus_synthetic": accuracy(mixed, test.images, test.labels),
        "synthetic_per_class": plan.synthetic_per_class,
        "classifier_steps": plan.classifier_steps,
        "gan_kimg": round(gen.step * cfg.train.batch_size / 1000, 3),
        "seconds": round(time.perf_counter() - start, 1),
    }
    log(
        f"K={k} seed {seed}: real only {cell['real_only']:.4f}, real + synthetic "
        f"{cell['real_plus_synthetic']:.4f} ({cell['seconds']:.0f} s)"
    )
    return cell


def augment_gain(
    out: str | Path,
    cfg: RunConfig | None = None,
    gan_kimg: float = 100.0,
    plan: GainPlan = GainPlan(),
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Every (K, seed) cell, then the table (mean ± std over seeds) in out/augment-gain.json
    and out/augment-gain.md. A cell whose result is already in the JSON is not rerun; a GAN
    already trained in out/ with the same settings is reused (another --synthetic-per-class or
    --classifier-steps retrains only the classifiers)."""
    out = Path(out)
    cfg = base_config(cfg, gan_kimg)
    resolution = MODELS.get(cfg.model.model).resolution
    test = load_dataset(
        cfg.data.data, "test", image_size=resolution, **own_options(cfg.data, cache_dir)
    )
    if min(plan.per_class) * test.n_classes > 0 and not test.labelled:
        raise FashionGANError(f"--data {cfg.data.data}: augment-gain needs labelled images")
    path = out / "augment-gain.json"
    done = json.loads(path.read_text())["cells"] if path.is_file() else []
    cells = []
    for k in plan.per_class:
        for seed in plan.seeds:
            old = [
                c
                for c in done
                if (c["per_class"], c["seed"], c["synthetic_per_class"])
                + (c.get("classifier_steps", CLASSIFIER_STEPS),)
                == (k, seed, plan.synthetic_per_class, plan.classifier_steps)
            ]
            cells.append(old[0] if old else one_cell(cfg, k, seed, plan, test, out, log))
            result = {"config": to_dict(cfg), "plan": dataclasses.asdict(plan), "cells": cells,
                      "test": test.source, "test_images": len(test)}  # fmt: skip
            atomic_write_bytes(path, (json.dumps(result, indent=1) + "\n").encode())
    table = gain_table(cells, plan)
    atomic_write_bytes(out / "augment-gain.md", table.encode())
    log(table)
    return result


def _mean_std(values: list[float]) -> str:
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.1f}"
    return f"{statistics.fmean(pct):.1f} ± {statistics.stdev(pct):.1f}"


def gain_table(cells: list[dict], plan: GainPlan) -> str:
    """Markdown: per K, test accuracy (%) real only, real + synthetic, and the gain."""
    lines = [
        f"| real images per class | real only (%) | + {plan.synthetic_per_class} synthetic per "
        "class (%) | gain (points) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for k in sorted({c["per_class"] for c in cells}):
        mine = [c for c in cells if c["per_class"] == k]
        a = [c["real_only"] for c in mine]
        b = [c["real_plus_synthetic"] for c in mine]
        gain = list(np.subtract(b, a))
        lines.append(f"| {k} | {_mean_std(a)} | {_mean_std(b)} | {_mean_std(gain)} |")
    return "\n".join(lines) + "\n"
