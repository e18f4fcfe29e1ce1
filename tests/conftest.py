"""Shared fixtures: tiny synthetic data sets in every supported layout, and the real one."""

from pathlib import Path

import numpy as np
import pytest

from fashiongan.data.csv import write_csv
from fashiongan.data.idx import write_idx

REAL_DATA = Path("/usr/share/datasets/fashion-mnist")


def synthetic_images(n_per_class: int = 20, size: int = 28, seed: int = 0):
    """uint8 N×size×size, labels int64: class c is a bright bar at a class-specific place."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(10):
        for _ in range(n_per_class):
            img = rng.integers(0, 30, (size, size)).astype(np.uint8)
            r = 2 + 2 * c
            img[r : r + 4, 4 : size - 4] = 200 + rng.integers(0, 55)
            images.append(img)
            labels.append(c)
    return np.stack(images), np.array(labels, np.int64)


def write_train_idx(directory: Path, n_per_class: int = 20) -> Path:
    """A train IDX pair (gzipped) of synthetic images in `directory`, unless already there."""
    if not (directory / "train-images-idx3-ubyte.gz").exists():
        images, labels = synthetic_images(n_per_class)
        write_idx(directory / "train-images-idx3-ubyte.gz", images)
        write_idx(directory / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return directory


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A directory with train and t10k IDX pairs (gzipped) of 200 and 100 images."""
    d = tmp_path / "idx"
    for prefix, n, seed in (("train", 20, 0), ("t10k", 10, 1)):
        images, labels = synthetic_images(n, seed=seed)
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return d


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    images, labels = synthetic_images(5)
    path = tmp_path / "tiny.csv"
    write_csv(path, images, labels)
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The Debian dataset-fashion-mnist files (installed by .ci/run). Missing → the test fails
    with the fix, rather than being skipped."""
    if not (REAL_DATA / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"Fashion-MNIST is not in {REAL_DATA}: apt-get install dataset-fashion-mnist")
    return REAL_DATA
