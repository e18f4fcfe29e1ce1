"""Load a user's data set (folder or arrays, see data/folder.py) at a resolution: the decoded set
is cached by a key of its files and decoding, written only once whole, and split into training
and held-out parts when it has no test split of its own."""

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from fashiongan.data.folder import (
    CACHE_VERSION,
    Decoding,
    RawSet,
    class_ids,
    decode_files,
    from_arrays,
    listing,
    read_arrays,
    split_dirs,
)
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_save


def memory_budget() -> int:
    """Bytes a decoded set may take: half of what the machine has available (the other half is
    for the models, batches and the copies the load makes), so a set that would swap is refused."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024 // 2
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def _files_key(files: list[Path], how: Decoding, extra: str) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} {how} {extra}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_folder(path: Path, how: Decoding, cache_dir: Path | None) -> RawSet:
    files, names, classes = listing(path)
    key = _files_key(files, how, "folder")
    cached = cache_dir / "datasets" / f"{key[:32]}.pt" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            blob = torch.load(cached, weights_only=True)
            labels = blob["labels"].numpy() if blob["labels"] is not None else None
            raw = RawSet(blob["images"].numpy(), labels, tuple(blob["class_names"]), str(path))
            return canonical(raw)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            pass
    labels_all, class_names = class_ids(names, classes, str(path))
    images, kept = decode_files(files, how, memory_budget())
    labels = labels_all[kept] if labels_all is not None else None
    if labels is not None:
        _check_classes(labels, class_names, path)
    if cached is not None:  # only a whole, checked set is cached
        blob = {
            "images": torch.from_numpy(images),
            "labels": None if labels is None else torch.from_numpy(labels),
            "class_names": list(class_names),
        }
        atomic_save(cached, lambda f: torch.save(blob, f))
    return canonical(RawSet(images, labels, class_names, str(path)))


def _check_classes(labels: np.ndarray, class_names: tuple[str, ...], origin) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    if len(class_names) < 2:
        raise FashionGANError(
            f"{origin}: one class only ({class_names[0]!r}); a labelled set needs 2 or more "
            "(for an unlabelled set, put the images in one flat folder and train --cond none)"
        )
    if (counts == 0).any():
        empty = class_names[int(np.flatnonzero(counts == 0)[0])]
        raise FashionGANError(f"{origin}: class {empty!r} has no images")


def read_array_file(path: Path, split: str | None, how: Decoding) -> RawSet:
    images, labels, names = read_arrays(path, split)
    need = len(images) * (3 if images.ndim == 4 else 1) * how.size**2
    if need > memory_budget():
        raise FashionGANError(
            f"{path}: {len(images)} images at {how.size}×{how.size} need {need / 2**30:.2f} GiB, "
            f"over the {memory_budget() / 2**30:.2f} GiB free for them; use --subset"
        )
    images = from_arrays(images, how)
    if labels is None:
        return canonical(RawSet(images, None, ("all",), str(path)))
    if labels.min() < 0 or (names and labels.max() >= len(names)):
        bad = int(labels[(labels < 0) | (labels >= max(len(names), 1))][0])
        raise FashionGANError(f"{path}: label {bad} is outside 0..{len(names) - 1}")
    class_names = names or tuple(str(i) for i in range(int(labels.max()) + 1))
    _check_classes(labels, class_names, path)
    return canonical(RawSet(images, labels, class_names, str(path)))


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded, stratified held-out part: per class, round(fraction × n) of its images (at
    least one when the class has two or more), drawn with `seed`. Returns a boolean mask."""
    g = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = round(fraction * len(members))
        k = min(max(k, 1 if fraction > 0 and len(members) > 1 else 0), len(members) - 1)
        held[g.permutation(members)[:k]] = True
    return held


def canonical(raw: RawSet) -> RawSet:
    """The set sorted by (label, pixels): the same images in any layout or file order give the
    same array, so the same fingerprint and the same held-out split."""
    rows = np.ascontiguousarray(raw.images.reshape(len(raw.images), -1))
    as_bytes = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    rank = np.argsort(as_bytes, kind="stable")
    order_of = np.empty_like(rank)
    order_of[rank] = np.arange(len(rank))
    keys = (order_of,) if raw.labels is None else (order_of, raw.labels)
    order = np.lexsort(keys)
    labels = None if raw.labels is None else raw.labels[order]
    return RawSet(raw.images[order], labels, raw.class_names, raw.source, raw.skipped)


def checksum(raw: RawSet) -> str:
    """The data set's fingerprint: sha256 of the decoded images, labels and class names."""
    h = hashlib.sha256(raw.images.tobytes())
    h.update(b"" if raw.labels is None else raw.labels.astype(np.int64).tobytes())
    h.update("\n".join(raw.class_names).encode())
    return h.hexdigest()


def read_own(
    data: str, split: str, how: Decoding, fraction: float, seed: int, cache_dir: Path | None
) -> tuple[RawSet, str, str]:
    """The `split` part of the user's set at `data`, a note of where it came from, and the
    fingerprint of the whole set (both parts)."""
    path = Path(data)
    parts = split_dirs(path) if path.is_dir() else None
    if parts is not None:
        raw = read_folder(parts[split], how, cache_dir)
        other = read_folder(parts["test" if split == "train" else "train"], how, cache_dir)
        pair = [checksum(raw), checksum(other)][:: 1 if split == "train" else -1]
        return raw, raw.source, hashlib.sha256("".join(pair).encode()).hexdigest()
    if path.is_file():
        keys = []
        if path.suffix.lower() == ".npz":
            try:
                with np.load(path) as arrays:
                    keys = arrays.files
            except (OSError, ValueError):  # read_arrays says what is wrong, in one line
                pass
        if "x_train" in keys and "x_test" in keys:  # the Keras layout: its own two splits
            raw = read_array_file(path, split, how)
            other = read_array_file(path, "test" if split == "train" else "train", how)
            pair = [checksum(raw), checksum(other)][:: 1 if split == "train" else -1]
            return raw, f"{path} (x_{split})", hashlib.sha256("".join(pair).encode()).hexdigest()
        raw = read_array_file(path, None, how)
    else:
        raw = read_folder(path, how, cache_dir)
    labels = raw.labels if raw.labels is not None else np.zeros(len(raw.images), np.int64)
    held = holdout_split(labels, fraction, seed)
    keep = held if split == "test" else ~held
    if not keep.any():
        raise FashionGANError(
            f"--data {data}: the {split} part is empty ({len(labels)} images, --val-fraction "
            f"{fraction}); use a larger set or another --val-fraction"
        )
    part = RawSet(
        raw.images[keep], None if raw.labels is None else raw.labels[keep], raw.class_names,
        raw.source,
    )  # fmt: skip
    what = "held-out" if split == "test" else "training"
    note = f"{raw.source} ({what} part: {keep.sum()} of {len(keep)}, --val-fraction {fraction}"
    return part, note + f", seed {seed})", checksum(raw)
