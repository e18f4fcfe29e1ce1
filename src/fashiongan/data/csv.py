"""Read and write the Kaggle CSV layout of Fashion-MNIST: a header `label,pixel1,...,pixelP`,
then one row per image: an integer label and P integer pixels in 0..255 (P = H*W, square)."""

import io
import math
import os
from pathlib import Path

import numpy as np

from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_open


def _expected_header(n_pixels: int) -> list[str]:
    return ["label"] + [f"pixel{i}" for i in range(1, n_pixels + 1)]


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images uint8 N×S×S, labels int64 N). Labels are checked by the caller against
    its class count; here only that they are non-negative integers."""
    path = Path(path)
    if path.is_dir():
        raise FashionGANError(f"{path}: is a directory, expected a CSV file")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = f.readline().strip().split(",")
            body = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise FashionGANError(f"{path}: cannot read CSV file: {e}") from None
    if header == [""] and not body:
        raise FashionGANError(f"{path}: empty file; expected a CSV header and rows")
    n_pixels = len(header) - 1
    side = math.isqrt(max(n_pixels, 0))
    if n_pixels < 1 or side * side != n_pixels or header != _expected_header(n_pixels):
        shown = ",".join(header[:3]) + (",..." if len(header) > 3 else "")
        raise FashionGANError(
            f"{path}: wrong CSV header {shown!r} ({len(header)} columns); expected "
            f"'label,pixel1,...,pixelP' with P a square number (784 for 28x28)"
        )
    if not body.strip():
        raise FashionGANError(f"{path}: CSV file has a header but no rows")
    try:
        # float64 first so that '1.5' or 'nan' is caught below rather than truncated silently
        values = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        # a ragged row: name its line (looked for only when parsing failed)
        for line_no, line in enumerate(body.splitlines(), start=2):
            if line.strip() and line.count(",") != n_pixels:
                raise FashionGANError(
                    f"{path}: line {line_no} has {line.count(',') + 1} cells; the header has "
                    f"{n_pixels + 1}"
                ) from None
        msg = str(e).splitlines()[0]
        raise FashionGANError(
            f"{path}: malformed CSV row (line numbers after the header): {msg}"
        ) from None
    if values.shape[1] != n_pixels + 1:
        raise FashionGANError(
            f"{path}: rows have {values.shape[1]} columns; the header has {n_pixels + 1}"
        )
    if not np.isfinite(values).all() or (values != np.round(values)).any():
        row = int(np.argwhere(~np.isfinite(values) | (values != np.round(values)))[0, 0]) + 2
        raise FashionGANError(f"{path}: line {row}: cells must be integers")
    labels, pixels = values[:, 0], values[:, 1:]
    if (pixels < 0).any() or (pixels > 255).any():
        row = int(np.argwhere((pixels < 0) | (pixels > 255))[0, 0]) + 2
        raise FashionGANError(f"{path}: line {row}: pixel values must be in 0..255")
    if (labels < 0).any():
        row = int(np.argwhere(labels < 0)[0, 0]) + 2
        raise FashionGANError(f"{path}: line {row}: labels must be non-negative integers")
    images = pixels.astype(np.uint8).reshape(-1, side, side)
    return images, labels.astype(np.int64)


def write_csv(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """images uint8 N×S×S, labels int N; written atomically in the Kaggle layout."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise FashionGANError(
            f"CSV export needs uint8 N×H×W images; got {images.dtype} {images.shape}"
        )
    n = images.shape[0]
    table = np.concatenate(
        [np.asarray(labels, np.int64).reshape(n, 1), images.reshape(n, -1).astype(np.int64)], axis=1
    )
    with atomic_open(path) as f:
        f.write((",".join(_expected_header(table.shape[1] - 1)) + "\n").encode())
        np.savetxt(f, table, fmt="%d", delimiter=",")
