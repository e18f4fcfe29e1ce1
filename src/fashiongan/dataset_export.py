"""Synthetic data sets written in the formats loaders read: a grid PNG, a PNG folder per class,
NPZ, an IDX gz pair, the Kaggle CSV. Images come in as uint8 N×H×W; every output appears whole
or not at all."""

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image

from fashiongan.data.csv import write_csv
from fashiongan.data.idx import write_idx
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_dir, atomic_save, writable_dir
from fashiongan.imaging import display_scale, label_rows, make_grid, save_png

FORMATS = ("png", "pngs", "npz", "idx", "csv")
_EXT_FORMAT = {".png": "png", ".npz": "npz", ".csv": "csv"}


LAYOUTS = ("classes", "flat")


def _labels_table(tmp: Path, labels: np.ndarray, class_names: tuple[str, ...]) -> None:
    """labels.csv (`file,label`, the class name) and classes.txt (one name per line, id order)
    beside a flat folder's PNGs: `fashiongan train --data` reads the folder back labelled."""
    with open(tmp / "labels.csv", "w", newline="") as f:
        table = csv.writer(f)
        table.writerow(["file", "label"])
        table.writerows([f"{i:06d}.png", class_names[c]] for i, c in enumerate(labels))
    (tmp / "classes.txt").write_text("".join(f"{name}\n" for name in class_names))


def _export_png_folder(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    layout: str = "classes",
) -> list[Path]:
    """One PNG per image under out/<id>_<name>/NNNNNN.png, or with layout "flat" all in `out`
    (what pytorch-fid, clean-fid and torch-fidelity read) with labels.csv + classes.txt beside
    them when labelled. Written into a hidden temporary directory beside `out` and renamed at
    the end: `out` appears complete or not at all."""
    written = []
    with atomic_dir(out) as tmp:
        for i, (image, label) in enumerate(zip(images, labels)):
            name = class_names[label].replace("/", "-").replace(" ", "-") if label >= 0 else ""
            sub = "." if layout == "flat" else f"{label}_{name}" if label >= 0 else "unlabeled"
            (tmp / sub).mkdir(exist_ok=True)
            Image.fromarray(image).save(tmp / sub / f"{i:06d}.png", format="PNG")
            written.append(out / sub / f"{i:06d}.png")
        if layout == "flat" and len(labels) and labels.min() >= 0:
            _labels_table(tmp, labels, class_names)
            written += [out / "labels.csv", out / "classes.txt"]
    return written


def infer_format(out: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise FashionGANError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
        return fmt
    if out.suffix.lower() in _EXT_FORMAT:
        return _EXT_FORMAT[out.suffix.lower()]
    raise FashionGANError(
        f"--out {out}: cannot tell the format from the name; add --format "
        f"({', '.join(FORMATS)}) or end the name in .png, .npz or .csv"
    )


_FORMAT_SUFFIXES = {"png": (".png",), "npz": (".npz",), "csv": (".csv",)}


def check_output(out: Path, fmt: str, force: bool = False) -> None:
    """Refuse, before any work, an --out that this format would wrongly replace: a directory
    where a file goes, a file where a directory goes, and (without --force) an existing file of
    another kind — `--format npz --out run/checkpoints/latest.pt` must not eat a checkpoint."""
    if fmt in _FORMAT_SUFFIXES:
        if out.is_dir():
            raise FashionGANError(f"--out {out} is a directory; --format {fmt} writes one file")
        if out.exists() and out.suffix.lower() not in _FORMAT_SUFFIXES[fmt] and not force:
            raise FashionGANError(
                f"--out {out} exists and is not a .{fmt} file; --format {fmt} would replace it "
                f"(add --force to replace it, or choose another --out)"
            )
    elif out.exists() and not out.is_dir():
        raise FashionGANError(f"--out {out} is a file; --format {fmt} writes a directory")
    if fmt == "pngs" and out.is_dir() and any(out.iterdir()):
        raise FashionGANError(f"--out {out} exists and is not an empty directory; choose a new one")
    parent = out.parent if fmt in _FORMAT_SUFFIXES else out
    writable_dir(parent, "--out")


def export(
    out: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray | None,
    fmt: str,
    class_names: tuple[str, ...],
    ncol: int = 10,
    layout: str = "classes",
) -> list[Path]:
    """Write a synthetic data set; returns the files written. images uint8 N×H×W or N×3×H×W
    (NPZ and PNGs store colour channels last, as numpy and PIL load them; IDX and the Kaggle CSV
    hold grayscale only); labels int64 N or None (written as -1 where a format needs labels)."""
    out = Path(out)
    n = len(images)
    if images.ndim == 4:
        if fmt in ("idx", "csv"):
            raise FashionGANError(
                f"--format {fmt} holds grayscale images and these are colour; use npz or pngs"
            )
        if fmt != "png":
            images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    lab = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    if fmt == "png":
        grid = make_grid(images, ncol)
        rows = lab.reshape(-1, ncol) if n % ncol == 0 else None
        if labels is not None and rows is not None and (rows == rows[:, :1]).all():
            # one class per row: label the rows, upscale small images as the training grids do
            names = [class_names[c] for c in rows[:, 0]]
            scale = display_scale(images.shape[-1])
            save_png(out, label_rows(grid, names, images.shape[-1], scale=scale))
        else:
            save_png(out, grid)
        return [out]
    if fmt == "npz":

        def write(f):
            np.savez_compressed(f, images=images, labels=lab, class_names=np.array(class_names))

        atomic_save(out, write)
        return [out]
    if fmt == "csv":
        if labels is None:
            raise FashionGANError(
                "--format csv needs labels (a conditional model); use npz or pngs"
            )
        write_csv(out, images, lab)
        return [out]
    if fmt == "idx":
        if labels is None:
            raise FashionGANError(
                "--format idx writes an image/label pair and needs a conditional model; "
                "use npz or pngs"
            )
        paths = [out / "train-images-idx3-ubyte.gz", out / "train-labels-idx1-ubyte.gz"]
        try:
            write_idx(paths[0], images)
            write_idx(paths[1], lab.astype(np.uint8))
        except BaseException:
            paths[0].unlink(missing_ok=True)  # never leave half a pair
            raise
        return paths
    if fmt == "pngs":
        return _export_png_folder(out, images, lab, class_names, layout)
    raise FashionGANError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
