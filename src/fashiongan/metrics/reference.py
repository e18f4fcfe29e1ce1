"""Evaluator features of the real splits, computed once and cached on disk, keyed by the
evaluator's identity and the split's data checksum so a changed model or data set never reuses
stale numbers."""

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fashiongan.data.datasets import ImageDataset, balanced_subset, load_dataset
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_save
from fashiongan.metrics.evaluator import Evaluator
from fashiongan.metrics.precision_recall import kth_neighbour_distance


@dataclass
class FeatureSet:
    """An image set seen through the evaluator. images: uint8 N×S×S (N×C×S×S); labels: int64 N
    (true or requested class) or None; features: float32 N×F; logits: float32 N×n_classes."""

    images: torch.Tensor
    labels: torch.Tensor | None
    features: torch.Tensor
    logits: torch.Tensor
    description: str
    checksum: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor, description: str, checksum: str = "") -> "FeatureSet":
        labels = None if self.labels is None else self.labels[index]
        return FeatureSet(
            self.images[index],
            labels,
            self.features[index],
            self.logits[index],
            description,
            checksum,
        )


def _cache_path(cache_dir: Path, evaluator: Evaluator, split: str, checksum: str) -> Path:
    return cache_dir / "eval" / evaluator.id / f"{split}-{checksum[:16]}.pt"


def real_features(
    evaluator: Evaluator,
    split: str,
    cache_dir: Path,
    data: str | None = None,
    env_dir: str | None = None,
) -> FeatureSet:
    """The whole `split` at the evaluator's side, read as the evaluator's data was (a user's
    folder: channels, crop, held-out split), with its evaluator features (cached)."""
    own = evaluator.info.get("data_options", {}) if data is not None else {}
    ds: ImageDataset = load_dataset(
        data,
        split,
        env_dir=env_dir,
        image_size=evaluator.input["size"],
        **own,
        cache_dir=Path(cache_dir),
    )
    path = _cache_path(Path(cache_dir), evaluator, split, ds.checksum)
    cached = None
    if path.is_file():
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            if cached["features"].shape[0] != len(ds) or cached["checksum"] != ds.checksum:
                cached = None
        except Exception:  # noqa: BLE001 - a damaged cache is recomputed, never trusted
            cached = None
    if cached is None:
        features, logits = evaluator.features(ds.images)
        cached = {"features": features, "logits": logits, "checksum": ds.checksum}
        buffer = io.BytesIO()
        torch.save(cached, buffer)
        atomic_save(path, lambda f: f.write(buffer.getbuffer()))
    return FeatureSet(
        ds.images,
        ds.labels,
        cached["features"],
        cached["logits"],
        f"real {split} split ({ds.source})",
        ds.checksum,
    )


def reference_radii(
    real: FeatureSet, evaluator: Evaluator, cache_dir: Path, split: str, k: int
) -> torch.Tensor:
    """Each real feature's k-th nearest-neighbour distance (the PRDC manifold radii), cached
    beside the features: for the 60k train split this is the costly half of PRDC. A set with no
    checksum (a given set, --against) is not cached."""
    if not real.checksum:
        return kth_neighbour_distance(real.features, k)
    path = _cache_path(Path(cache_dir), evaluator, split, real.checksum).with_suffix(f".k{k}.pt")
    if path.is_file():
        try:
            radii = torch.load(path, map_location="cpu", weights_only=True)
            if radii.shape == (len(real),):
                return radii
        except Exception:  # noqa: BLE001 - a damaged cache is recomputed, never trusted
            pass
    radii = kth_neighbour_distance(real.features, k)
    buffer = io.BytesIO()
    torch.save(radii, buffer)
    atomic_save(path, lambda f: f.write(buffer.getbuffer()))
    return radii


def balanced_draw(real: FeatureSet, n: int, seed: int, n_classes: int = 10) -> FeatureSet:
    """A seeded class-balanced subset of n real images (all of them when n ≥ len)."""
    if n >= len(real):
        return real
    index = balanced_subset(real.labels, n, n_classes, seed)
    return real.subset(index, f"{n} images of the {real.description}")


def check_fits(sample: FeatureSet, evaluator: Evaluator, data: str | None) -> None:
    """Refuse a judged set whose labels the evaluator has no class for, and an evaluator of a
    user's data set with no --data (the reals would come from Fashion-MNIST)."""
    if (
        sample.labels is not None
        and len(sample.labels)
        and int(sample.labels.max()) >= (evaluator.n_classes)
    ):
        raise FashionGANError(
            f"{sample.description}: labels must be class ids 0..{evaluator.n_classes - 1} (the "
            f"classes of {evaluator.id}), found {int(sample.labels.max())}; for another data "
            "set pass --evaluator of one trained on it"
        )
    if data is None and "data" in evaluator.info:
        raise FashionGANError(
            f"{evaluator.id} was trained on {evaluator.info['data']}; pass that data set with "
            "--data so the real images come from it"
        )


# The evaluator's statistics of the real splits, shipped beside its weights so FID works where the
# data set is not installed. KID, precision/recall, SWD, per-class FID and memorization need the
# real features themselves, CAS the real images: they still need the data.
STATS_FILE = "reference-stats.safetensors"
STATS_FORMAT = "fashiongan-reference-stats"
OFFLINE_METRICS = ("fid", "is", "label_accuracy", "class_histogram")


@dataclass
class ReferenceStats:
    """A real split as the evaluator's feature mean and covariance (float64), without images.
    floors: the real-vs-real floors of OFFLINE_METRICS by judged-set size (str(n) → values)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    checksum: str
    source: str
    floors: dict


def shipped_stats(evaluator: Evaluator, split: str) -> ReferenceStats | None:
    """The evaluator's statistics of `split` (None when it has none), refusing a file written
    for other weights."""
    from safetensors import SafetensorError, safe_open

    path = evaluator.directory / STATS_FILE if evaluator.directory else None
    if path is None or not path.is_file():
        return None
    try:
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
            if meta.get("format") != STATS_FORMAT or f"{split}.mu" not in f.keys():
                return None
            mu, sigma = f.get_tensor(f"{split}.mu"), f.get_tensor(f"{split}.sigma")
        stats = ReferenceStats(
            mu, sigma, int(meta[f"{split}.n"]), meta[f"{split}.checksum"],
            meta[f"{split}.source"], json.loads(meta[f"{split}.floors"]),
        )  # fmt: skip
    except (OSError, SafetensorError, KeyError, ValueError) as e:
        raise FashionGANError(f"{path}: unreadable reference statistics ({e})") from None
    if meta.get("evaluator_sha256") != evaluator.sha256:
        raise FashionGANError(
            f"{path}: written for evaluator weights {meta.get('evaluator_sha256', '?')[:12]}…, "
            f"not {evaluator.id}; rewrite it with `fashiongan evaluator stats`"
        )
    return stats
