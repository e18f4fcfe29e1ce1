"""Memorization checks: each generated image's nearest training image, in pixel space (RMS
difference on the [0, 1] scale) and in evaluator feature space (Euclidean), and the share of
near-copies: samples closer to the training set than all but 1% of real unseen (test) images are.
A GAN that copies its data scores a near-copy share far above the real floor of 0.01."""

import json
from pathlib import Path

import numpy as np
import torch

from fashiongan.fileio import atomic_write_bytes

CHUNK = 1024
NEAR_COPY_QUANTILE = 0.01


def nearest(queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 Q×D, K×D → (Euclidean distance to the nearest key, its index), each Q.
    Squared norms expanded around one matmul per chunk; float32 is enough to rank."""
    keys = keys.float()
    key_sq = (keys * keys).sum(1).unsqueeze(0)
    dist, index = [], []
    for q in queries.float().split(CHUNK):
        # |q|² is the same along a row: add it after the min, saving a pass over chunk × K
        best = torch.addmm(key_sq, q, keys.T, alpha=-2).min(1)
        dist.append((best.values + (q * q).sum(1)).clamp(min=0).sqrt())
        index.append(best.indices)
    return torch.cat(dist), torch.cat(index)


def pixel_vectors(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W → float32 N×(H·W) on the [0, 1] scale."""
    return images.reshape(len(images), -1).float() / 255.0


def pixel_nn(images: torch.Tensor, train_images: torch.Tensor):
    """RMS pixel distance (in [0, 1]) from each image to its nearest training image, and that
    image's index."""
    d, idx = nearest(pixel_vectors(images), pixel_vectors(train_images))
    return d / np.sqrt(images[0].numel()), idx


def memorization(
    images: torch.Tensor,
    features: torch.Tensor,
    train_images: torch.Tensor,
    train_features: torch.Tensor,
    threshold: float,
) -> dict:
    """Distances of generated images (uint8 N×H×W and their features N×F) to the training set.
    threshold: the near-copy RMS distance (the 1% quantile of real test → train distances)."""
    pix, idx = pixel_nn(images, train_images)
    feat, _ = nearest(features, train_features)
    return {
        "nn_pixel": float(pix.median()),
        "nn_feature": float(feat.median()),
        "near_copies": float((pix < threshold).float().mean()),
        "pixel_distances": pix,
        "nearest_index": idx,
    }


def near_copy_threshold(test_to_train: torch.Tensor) -> float:
    return float(torch.quantile(test_to_train.double(), NEAR_COPY_QUANTILE))


def cached_near_copy_threshold(train, test, cache_dir: Path, log=print) -> float:
    """near_copy_threshold of the real test → train pixel distances (FeatureSets), cached per
    data (a JSON file under cache_dir/eval)."""
    path = Path(cache_dir) / "eval" / f"near-copy-{train.checksum[:16]}-{test.checksum[:16]}.json"
    if path.is_file():
        try:
            return float(json.loads(path.read_text())["threshold"])
        except (ValueError, KeyError, TypeError):
            pass
    log("memorization: test → train nearest-neighbour distances (once, then cached)")
    distances, _ = pixel_nn(test.images, train.images)
    threshold = near_copy_threshold(distances)
    atomic_write_bytes(path, json.dumps({"threshold": threshold}).encode())
    return threshold
