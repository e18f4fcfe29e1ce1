"""What `fashiongan evaluate SOURCE` reads: a run directory or checkpoint (sampled), or an image
set on disk — NPZ (`images`, optional `labels`), an IDX images file with its labels beside it,
a Kaggle CSV, or a PNG folder (one sub-folder per class, `<id>_<name>` or a class name, or PNGs
directly inside: labelled by a labels.csv beside them, else unlabelled). Every result is uint8
N×H×W with int64 labels or None."""

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from fashiongan.data.csv import read_csv
from fashiongan.data.datasets import FASHION_CLASSES, N_CLASSES, parse_class
from fashiongan.data.folder import class_ids, csv_listing
from fashiongan.data.idx import read_idx
from fashiongan.errors import FashionGANError

KINDS = (
    "a run directory, a checkpoint (.pt), a generator (.safetensors), a model directory, .npz, "
    "an IDX images file, .csv or a PNG folder"
)


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 N×H×W
    labels: torch.Tensor | None  # int64 N in [0, 10), or None
    description: str
    class_names: tuple[str, ...] = FASHION_CLASSES
    generator_step: int | None = None
    trained_on: dict | None = None  # a generator's: its run's data settings (config "data")


def _label_ids(labels: np.ndarray, where: str) -> np.ndarray:
    """int64 class ids from integer ids, whole-number floats, or class names (strings)."""
    if labels.dtype.kind in "US":
        names = labels.astype(str)
        try:
            return np.array([parse_class(str(n), FASHION_CLASSES) for n in names], np.int64)
        except FashionGANError as e:
            raise FashionGANError(f"{where}: labels: {e}") from None
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            bad = labels[~whole][0]
            raise FashionGANError(
                f"{where}: labels must be whole class ids, found {float(bad)} at index "
                f"{int(np.argmin(whole))}"
            )
    elif labels.dtype.kind not in "iub":
        raise FashionGANError(
            f"{where}: labels of dtype {labels.dtype}; expected integer class ids or class names"
        )
    return labels.astype(np.int64)


def _checked(images: np.ndarray, labels: np.ndarray | None, where: str) -> ImageSet:
    if images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # channels last (NPZ, PIL) → first
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    square = images.ndim in (3, 4) and images.shape[-1] == images.shape[-2] >= 8
    if not square or (images.ndim == 4 and images.shape[1] != 3):
        raise FashionGANError(
            f"{where}: expected square images N×S×S or colour N×S×S×3 (S ≥ 8), found shape "
            f"{images.shape}"
        )
    if images.dtype != np.uint8:
        raise FashionGANError(
            f"{where}: expected uint8 pixels 0..255, found {images.dtype} (convert with "
            f"(x * 255).round().astype('uint8') for images in [0, 1])"
        )
    if len(images) < 2:
        raise FashionGANError(f"{where}: {len(images)} image(s); at least 2 are needed")
    lab = None
    if labels is not None:
        labels = _label_ids(np.asarray(labels).reshape(-1), where)
        if len(labels) != len(images):
            raise FashionGANError(f"{where}: {len(images)} images but {len(labels)} labels")
        if (labels == -1).all():
            lab = None  # our own unconditional exports mark "no label" with -1
        elif labels.min() < 0:  # the upper bound is the evaluator's class count (suite.py)
            raise FashionGANError(
                f"{where}: labels must be class ids 0, 1, ... (or all -1 for none), "
                f"found {labels.min()}..{labels.max()}"
            )
        else:
            lab = torch.from_numpy(labels)
    return ImageSet(torch.from_numpy(np.array(images, order="C")), lab, where)  # a writable copy


def _read_npz(path: Path) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            key = next((k for k in ("images", "x", "arr_0") if k in keys), None)
            if key is None:
                raise FashionGANError(
                    f"{path}: no 'images' array (found: {', '.join(keys) or 'none'})"
                )
            images = z[key]
            labels = next((z[k] for k in ("labels", "y") if k in keys), None)
    except FashionGANError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise FashionGANError(f"{path}: not a readable .npz ({e or type(e).__name__})") from None
    return _checked(images, labels, str(path))


def _read_idx_pair(path: Path) -> ImageSet:
    label_name = path.name.replace("images-idx3", "labels-idx1")
    label_path = path.with_name(label_name)
    if not label_path.exists():
        alt = label_path.with_name(label_path.name.removesuffix(".gz"))
        gz = label_path.with_name(label_path.name + ".gz")
        label_path = next((p for p in (alt, gz) if p.exists()), None)
    labels = read_idx(label_path) if label_path is not None else None
    return _checked(read_idx(path), labels, str(path))


def _class_of_folder(name: str) -> int:
    """A class sub-folder's id: '7', '7_sneaker' (what `generate --format pngs` writes; a name
    after the id must not name another class, free text may follow) or a class name. Numbered
    folders that are not class ids ('00000', '00001': chunks, as some tools write) are refused,
    not read as 0, 1."""
    m = re.fullmatch(r"(\d+)(?:_(.*))?", name)
    if m is None:
        return parse_class(name.replace("_", " "), FASHION_CLASSES)
    digits, rest = m.groups()
    if str(int(digits)) != digits:  # ids above the evaluator's classes are refused by evaluate
        raise FashionGANError(f"'{name}' is not a class id (0, 1, ... without leading zeros)")
    c = int(digits)
    if rest is not None and c < N_CLASSES:
        try:
            named = parse_class(rest.replace("_", " "), FASHION_CLASSES)
        except FashionGANError:
            named = None
        if named is not None and named != c:  # free text after the id is fine; another class not
            raise FashionGANError(
                f"'{name}': id {c} is {FASHION_CLASSES[c]!r} but the rest names "
                f"{FASHION_CLASSES[named]!r}; rename it "
                f"'{c}_{FASHION_CLASSES[c].replace('/', '-').replace(' ', '-')}' or '{c}'"
            )
    return c


def _pngs(directory: Path) -> list[Path]:
    """The PNG files in `directory`, by name, whatever the case of their extension."""
    return sorted(p for p in directory.iterdir() if p.suffix.lower() == ".png" and p.is_file())


MAX_PNG_SIDE = 1024  # far above any image this tool trains on; decoding stops before this


def _read_png(path: Path) -> np.ndarray:
    """An 8-bit image: H×W when every pixel is gray (RGB(A), LA and palette files included, as
    most tools write a grayscale figure), H×W×3 when it has colour. Transparency and 16-bit
    depth are refused rather than converted with a silent loss."""
    try:
        with Image.open(path) as img:
            mode, (w, h) = img.mode, img.size
            if max(w, h) > MAX_PNG_SIDE:
                raise FashionGANError(
                    f"{path}: {w}×{h} pixels; expected small grayscale images (at most "
                    f"{MAX_PNG_SIDE} a side)"
                )
            if mode == "L":
                return np.asarray(img)
            if mode not in ("1", "P", "LA", "RGB", "RGBA", "PA"):
                raise FashionGANError(
                    f"{path}: image mode {mode} (e.g. 16-bit or float); expected 8-bit "
                    f"grayscale (mode L)"
                )
            rgba = np.asarray(img.convert("RGBA"))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise FashionGANError(f"{path}: not a readable image ({e})") from None
    if (rgba[..., 3] != 255).any():
        raise FashionGANError(
            f"{path}: has transparent pixels (mode {mode}); expected opaque grayscale"
        )
    if not ((rgba[..., 0] == rgba[..., 1]) & (rgba[..., 1] == rgba[..., 2])).all():
        return np.ascontiguousarray(rgba[..., :3])  # colour: H×W×3
    return np.ascontiguousarray(rgba[..., 0])


def _read_png_folder(path: Path) -> ImageSet:
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    direct = _pngs(path)
    if direct and subdirs:
        raise FashionGANError(f"{path}: holds both PNGs and sub-folders; expected one or the other")
    files, labels = [], []
    if direct:
        files = direct
        if (path / "labels.csv").is_file():  # `generate --layout flat`, or any such table
            files, names, classes = csv_listing(path, direct)
            labels = list(class_ids(names, classes or FASHION_CLASSES, str(path))[0])
    for sub in subdirs:
        try:
            c = None if sub.name == "unlabeled" else _class_of_folder(sub.name)
        except FashionGANError as e:
            raise FashionGANError(
                f"{sub}: sub-folder name is not a class ({e}); expected '<id>_<name>', an id "
                f"0..9 or a class name such as 'sneaker'"
            ) from None
        pngs = _pngs(sub)
        files += pngs
        labels += [-1 if c is None else c] * len(pngs)
    if not files:
        raise FashionGANError(f"{path}: no .png files found (looked in it and its sub-folders)")
    arrays = [_read_png(f) for f in files]
    if any(a.ndim == 3 for a in arrays):  # a colour set; its gray images get three equal planes
        arrays = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2) for a in arrays]
    odd = next((i for i, a in enumerate(arrays) if a.shape != arrays[0].shape), None)
    if odd is not None:
        (h0, w0), (h1, w1) = arrays[0].shape[:2], arrays[odd].shape[:2]
        raise FashionGANError(
            f"{path}: the PNGs differ in size ({files[0].name} is {w0}×{h0}, "
            f"{files[odd].relative_to(path)} is {w1}×{h1}); expected one size"
        )
    lab = np.array(labels, np.int64) if labels else None
    if lab is not None and (lab == -1).any() and not (lab == -1).all():
        raise FashionGANError(f"{path}: mixes an 'unlabeled' folder with class folders")
    return _checked(np.stack(arrays), lab, str(path))


def is_generator_source(path: Path) -> bool:
    from fashiongan.model_card import is_model_dir

    return (
        path.suffix in (".pt", ".safetensors")
        or (path.is_dir() and (path / "checkpoints").is_dir())
        or is_model_dir(path)
    )


def read_image_set(source: str) -> ImageSet:
    """Read an image set from disk (not a generator): see the module docstring."""
    path = Path(source)
    if not path.exists():
        raise FashionGANError(f"{path}: no such file or directory; expected {KINDS}")
    name = path.name.lower()
    if path.is_dir():
        pairs = sorted(path.glob("*-images-idx3-ubyte*"))
        if pairs:
            if len(pairs) > 1:
                raise FashionGANError(
                    f"{path}: holds {len(pairs)} IDX image files; name one of them "
                    f"({', '.join(p.name for p in pairs)})"
                )
            return _read_idx_pair(pairs[0])
        return _read_png_folder(path)
    if name.endswith(".npz"):
        return _read_npz(path)
    if name.endswith(".csv"):
        images, labels = read_csv(path)
        return _checked(images, labels, str(path))
    if "images-idx3" in name or name.endswith((".idx", ".ubyte", ".ubyte.gz")):
        return _read_idx_pair(path)
    if name.endswith(".png"):
        raise FashionGANError(
            f"{path}: a single PNG (a grid?) cannot be evaluated; give a folder of PNGs, or "
            f"generate an .npz with `fashiongan generate RUN --out samples.npz`"
        )
    raise FashionGANError(f"{path}: cannot tell what this is; expected {KINDS}")
