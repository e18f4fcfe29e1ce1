"""Users' own images: a folder of class sub-folders, a flat folder with a labels CSV, a flat
folder of unlabelled images, or NPZ/NPY arrays. Each image is decoded once with Pillow, made
square and resized to the model's resolution, and stacked into one uint8 array.

Rules, stated once (docs/data.md repeats them):
- layout: DIR/train/ and DIR/test/ (each any layout below) are the two splits; otherwise DIR is
  one set and a seeded, stratified held-out part is cut from it (datasets.holdout_split).
  DIR/<class>/*.png: one sub-folder per class, its name the class name, classes sorted by name.
  DIR/*.png + DIR/labels.csv (`file,label`): labels are names or ids; DIR/classes.txt (one
  name a line), when present, is the class list and a label outside it is an error; otherwise
  the sorted distinct labels are. DIR/*.png alone: unlabelled (one class, `--cond none`).
- channels: an image with transparency is composited onto black (the Fashion-MNIST background);
  the set is colour when any image has two channels that differ, else grayscale; `--channels
  1|3` forces (1: ITU-R 601 luma, Pillow's "L").
- size: centre-crop (`--fit crop`) or black-pad (`--fit pad`) to a square, then Pillow's
  bicubic resize (antialiased when shrinking) to the model's resolution.
- bad files (unreadable, truncated, smaller than --min-size, byte-identical duplicates) stop
  the load with a one-line error naming the file; with --skip-bad they are left out and counted.
"""

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fashiongan.errors import FashionGANError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npz", ".npy")
FITS = ("crop", "pad")
CACHE_VERSION = 1  # bump when decoding changes: cached sets of other versions are not read


@dataclass
class Decoding:
    """How files become the uint8 array: every field changes the decoded bytes."""

    size: int
    channels: int = 0  # 0 = from the data (colour if any image is), 1 or 3 forced
    fit: str = "crop"
    min_size: int = 8
    skip_bad: bool = False


@dataclass
class RawSet:
    """images uint8 N×H×W (gray) or N×3×H×W; labels int64 N, or None when unlabelled."""

    images: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)


def is_image_file(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def is_own_layout(path: Path) -> bool:
    """Whether `path` is data in one of this module's layouts (not IDX or Kaggle CSV)."""
    if path.is_file():
        return path.suffix.lower() in ARRAY_SUFFIXES
    if not path.is_dir():
        return False
    return any(is_image_file(p) for p in path.iterdir()) or any(
        next(iter(images_below(d)), None) is not None for d in _subdirs(path)
    )


def images_below(d: Path):
    """The image files anywhere under `d`, sorted by path, hidden files and folders left out."""
    for p in sorted(d.rglob("*")):
        if is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(d).parts):
            yield p


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def split_dirs(path: Path) -> dict[str, Path] | None:
    """DIR/train and DIR/test when both hold a set, else None."""
    parts = {s: path / s for s in ("train", "test")}
    if path.is_dir() and all(p.is_dir() and is_own_layout(p) for p in parts.values()):
        return parts
    return None


def listing(path: Path) -> tuple[list[Path], list[str | None], tuple[str, ...] | None]:
    """(files, their label names or None, the class list or None) of a folder set."""
    classes = _subdirs(path)
    flat = sorted(p for p in path.iterdir() if is_image_file(p))
    if classes and not flat and not (path / "labels.csv").is_file():
        files: list[Path] = []
        names: list[str | None] = []
        for d in classes:
            members = list(images_below(d))
            if not members:
                raise FashionGANError(
                    f"{d}: class folder '{d.name}' holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            files += members
            names += [d.name] * len(members)
        return files, names, tuple(d.name for d in classes)
    if classes and flat and not (path / "labels.csv").is_file():
        raise FashionGANError(
            f"--data {path}: both class folders ({classes[0].name}, ...) and loose images "
            f"({flat[0].name}, ...); move the loose images into their class folders, or add "
            "labels.csv"
        )
    if not flat:
        raise FashionGANError(f"--data {path}: no images there ({', '.join(IMAGE_SUFFIXES)})")
    if (path / "labels.csv").is_file():
        return csv_listing(path, flat)
    return flat, [None] * len(flat), None


def csv_listing(path: Path, flat: list[Path]):
    """(files, label names, classes.txt's class list or None) of a flat folder's labels.csv."""
    table = path / "labels.csv"
    with open(table, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["file", "label"]:
        raise FashionGANError(f"{table}: expected a header row 'file,label'")
    classes = None
    if (path / "classes.txt").is_file():
        lines = (path / "classes.txt").read_text().splitlines()
        classes = tuple(c.strip() for c in lines if c.strip())
    files, names = [], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[0].strip():
            raise FashionGANError(f"{table}: line {n}: expected 'file,label', got {row!r}")
        file = path / row[0].strip()
        if not file.is_file():
            raise FashionGANError(f"{table}: line {n}: no file {file}")
        files.append(file)
        names.append(row[1].strip())
    listed = {f.resolve() for f in files}
    unlisted = [p for p in flat if p.resolve() not in listed]
    if unlisted:
        print(f"note: {len(unlisted)} images in {path} are not in labels.csv and are left out")
    return files, names, classes


def class_ids(
    names: list[str | None], classes: tuple[str, ...] | None, origin: str
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Label names (or ids when the class list has them) → int64 ids and the class list."""
    if all(n is None for n in names):
        return None, ("all",)
    if classes is None:
        distinct = sorted(set(names))
        if all(n.isdigit() for n in distinct):  # integer labels: classes 0..max
            distinct = [str(i) for i in range(max(map(int, distinct)) + 1)]
        classes = tuple(distinct)
    index = {c: i for i, c in enumerate(classes)}
    ids = []
    for name in names:
        i = index.get(name, int(name) if name.isdigit() else -1)
        if not 0 <= i < len(classes):
            shown = ", ".join(classes[:8]) + (", …" if len(classes) > 8 else "")
            raise FashionGANError(f"{origin}: label {name!r} is not a class ({shown})")
        ids.append(i)
    return np.asarray(ids, np.int64), classes


def _flatten_alpha(img: Image.Image) -> Image.Image:
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba).convert("RGB" if img.mode != "LA" else "L")
    if img.mode in ("1", "I", "I;16", "F"):
        img = img.convert("L")
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, ...
    return img


def square(img: Image.Image, size: int, fit: str) -> Image.Image:
    """Centre-crop or black-pad to a square, then bicubic-resize to size×size."""
    w, h = img.size
    side = min(w, h) if fit == "crop" else max(w, h)
    if fit == "crop":
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif w != h:
        canvas = Image.new(img.mode, (side, side), 0)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    if side != size:
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return img


def decode(path: Path, how: Decoding, data: bytes | None = None) -> tuple[np.ndarray, bool]:
    """One file (its bytes `data` when already read) → (uint8 size×size×3 array, whether it is
    gray). Raises FashionGANError."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            img.load()
            img = _flatten_alpha(img)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise FashionGANError(f"{path}: not a readable image ({e})") from None
    if min(img.size) < how.min_size:
        raise FashionGANError(
            f"{path}: {img.size[0]}×{img.size[1]} is smaller than --min-size {how.min_size}"
        )
    if how.channels == 1:
        img = img.convert("L")
    elif how.channels == 3:
        img = img.convert("RGB")
    px = np.asarray(square(img, how.size, how.fit))
    if px.ndim == 2:
        return np.repeat(px[:, :, None], 3, axis=2), True
    gray = bool((px[:, :, 0] == px[:, :, 1]).all() and (px[:, :, 1] == px[:, :, 2]).all())
    return px, gray


def decode_files(files: list[Path], how: Decoding, budget: int) -> tuple[np.ndarray, list[int]]:
    """Decode every file into one preallocated N×3×S×S array; returns (images gray or colour
    by the set's rule, the indices of the files kept). Refuses a set over `budget` bytes."""
    need = len(files) * 3 * how.size**2
    if need > budget:
        raise FashionGANError(
            f"{len(files)} images at {how.size}×{how.size}×3 need {need / 2**30:.2f} GiB in "
            f"memory, over the {budget / 2**30:.2f} GiB this machine has free for them; "
            "use a smaller model resolution, --channels 1, or --subset"
        )
    out = np.empty((len(files), 3, how.size, how.size), np.uint8)
    kept, seen, skipped = [], {}, {"unreadable or too small": 0, "duplicate": 0}
    all_gray = True
    for i, path in enumerate(files):
        data = path.read_bytes()  # read once: hashed for duplicates, then decoded
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            if not how.skip_bad:
                raise FashionGANError(
                    f"{path}: a byte-identical copy of {seen[digest]} (remove one, or "
                    "--skip-bad to keep the first)"
                )
            skipped["duplicate"] += 1
            continue
        try:
            px, gray = decode(path, how, data)
        except FashionGANError as e:
            if not how.skip_bad:
                raise FashionGANError(f"{e} (or --skip-bad to leave such files out)") from None
            skipped["unreadable or too small"] += 1
            continue
        seen[digest] = path
        out[len(kept)] = px.transpose(2, 0, 1)
        all_gray &= gray
        kept.append(i)
    images = out[: len(kept)]
    if how.channels == 1 or (how.channels == 0 and all_gray):
        images = np.ascontiguousarray(images[:, 0])
    bad = {k: v for k, v in skipped.items() if v}
    if bad:
        print("warning: --skip-bad left out " + ", ".join(f"{v} {k}" for k, v in bad.items()))
    return images, kept


def read_arrays(path: Path, split: str | None) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """An NPZ (images/labels, x/y or x_train/y_train/x_test/y_test; class_names optional) or an
    NPY of images → (uint8 images N×H×W or N×H×W×C, int64 labels or None, class names)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:4] != b"PK\x03\x04" and magic != b"\x93NUMPY":
        raise FashionGANError(
            f"--data {path}: not an NPZ (zip) or NPY file (it starts with {magic!r}); write it "
            "with numpy.savez or numpy.save"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FashionGANError(f"--data {path}: not a readable {path.suffix} file ({e})") from None
    if isinstance(loaded, np.ndarray):
        return _check_array(loaded, path), None, ()
    keys = set(loaded.files)
    pairs = [("images", "labels"), ("x", "y")]
    if split is not None:
        pairs.insert(0, (f"x_{split}", f"y_{split}"))
    for xk, yk in pairs:
        if xk in keys:
            labels = loaded[yk].astype(np.int64).ravel() if yk in keys else None
            names = tuple(str(n) for n in loaded["class_names"]) if "class_names" in keys else ()
            images = _check_array(loaded[xk], path)
            if labels is not None and len(labels) != len(images):
                raise FashionGANError(
                    f"{path}: {len(images)} images but {len(labels)} labels ('{yk}')"
                )
            return images, labels, names
    raise FashionGANError(
        f"{path}: no image array; expected keys 'images' (+ 'labels'), 'x' (+ 'y') or "
        f"'x_train'/'y_train', found: {', '.join(sorted(keys))}"
    )


def _check_array(a: np.ndarray, path: Path) -> np.ndarray:
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[-1] not in (1, 3, 4)):
        raise FashionGANError(
            f"{path}: expected images (N,H,W) or (N,H,W,C) with C 1, 3 or 4, got {a.shape}"
        )
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating) or a.min() < 0 or a.max() > 1:
            raise FashionGANError(
                f"{path}: expected uint8 pixels 0..255 or floats in [0, 1], got {a.dtype} "
                f"from {a.min()} to {a.max()}"
            )
        a = np.round(a * 255).astype(np.uint8)
    return a


def from_arrays(images: np.ndarray, how: Decoding) -> np.ndarray:
    """Array images (N,H,W) or (N,H,W,C) → uint8 N×S×S or N×3×S×S by the rules of files."""
    if images.ndim == 4 and images.shape[-1] == 4:  # straight alpha onto black
        alpha = images[..., 3:].astype(np.uint16)
        images = ((images[..., :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if min(images.shape[1:3]) < how.min_size:
        raise FashionGANError(
            f"images of {images.shape[2]}×{images.shape[1]} are smaller than --min-size "
            f"{how.min_size}"
        )
    colour = images.ndim == 4 and not (
        (images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all()
    )
    channels = how.channels or (3 if colour else 1)
    same_size = images.shape[1] == images.shape[2] == how.size
    if same_size and images.ndim == 3 and channels == 1:
        return np.ascontiguousarray(images)  # the fast path: already what the model takes
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(images), channels, how.size, how.size), np.uint8)
    for i, a in enumerate(images):  # once, at load
        img = Image.fromarray(a).convert(mode)
        px = np.asarray(square(img, how.size, how.fit))
        out[i] = px[None] if px.ndim == 2 else px.transpose(2, 0, 1)
    return out[:, 0].copy() if channels == 1 else out
