"""Find, load and batch a labeled image set held in memory as one uint8 tensor.

A data source is a directory holding IDX files under the official names
(`{train,t10k}-images-idx3-ubyte` and `{train,t10k}-labels-idx1-ubyte`, each gzipped or not) or
Kaggle CSVs (`fashion-mnist_train.csv`, `train.csv`, ...), or a single CSV file; or a user's own
images (a folder of class folders, a flat folder with labels.csv, NPZ/NPY: data/folder.py).
Batches are made by indexing a seeded permutation: no per-image Python.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fashiongan.data.csv import read_csv
from fashiongan.data.folder import is_own_layout
from fashiongan.data.idx import read_idx
from fashiongan.errors import DataNotFound, FashionGANError

FASHION_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
CSV_NAMES = {"train": "fashion-mnist_train.csv", "test": "fashion-mnist_test.csv"}
SPLITS = tuple(SPLIT_PREFIX)
N_CLASSES = 10  # MNIST-format data sets: labels 0..9
CLASS_NAME_SETS = ("auto", "fashion", "numeric")
# sha256 of the decoded images + labels bytes (int64) of the official splits
FASHION_CHECKSUMS = {
    "train": "1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
    "test": "9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
}


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "fashiongan"


def search_path(env_dir: str | None) -> list[Path]:
    """Where a data set is looked for when --data is not given, in order."""
    candidates = [Path(env_dir)] if env_dir else []
    return candidates + [Path("data"), default_cache_dir(), SYSTEM_DIR]


def _gz_or_plain(stem: Path) -> Path | None:
    for path in (stem.with_name(stem.name + ".gz"), stem):
        if path.is_file():
            return path
    return None


def _split_files(directory: Path, split: str) -> tuple[Path, Path] | Path | None:
    """The (images, labels) IDX pair or the CSV of `split` in `directory`, if any."""
    prefix = SPLIT_PREFIX[split]
    images, labels = (
        _gz_or_plain(directory / f"{prefix}-{kind}")
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    if images and labels:
        return images, labels
    if images or labels:
        have, missing = (images, "labels-idx1") if images else (labels, "images-idx3")
        raise FashionGANError(
            f"{directory}: found {have.name} but no {prefix}-{missing}-ubyte[.gz] beside it"
        )
    for name in (CSV_NAMES[split], f"{split}.csv"):
        if (directory / name).exists():
            return directory / name
    return None


def find_data(data: str | None, split: str, env_dir: str | None = None) -> tuple[Path, Path] | Path:
    """Resolve --data (a directory or a CSV file) or search the default places."""
    if split not in SPLITS:
        raise FashionGANError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if data is not None:
        path = Path(data)
        if path.is_file():
            if path.suffix.lower() != ".csv":
                raise FashionGANError(
                    f"--data {path}: expected a directory of IDX files or a .csv file"
                )
            return path
        if not path.is_dir():
            raise FashionGANError(f"--data {path}: no such file or directory")
        found = _split_files(path, split)
        if found is None:
            raise FashionGANError(
                f"--data {path}: no {split} split there (looked for "
                f"{SPLIT_PREFIX[split]}-images-idx3-ubyte[.gz] + labels, or {CSV_NAMES[split]})"
            )
        return found
    looked = search_path(env_dir)
    for directory in looked:
        if directory.is_dir() and (found := _split_files(directory, split)) is not None:
            return found
    where = ", ".join(str(p) for p in looked)
    raise DataNotFound(
        f"no Fashion-MNIST {split} split found (looked in: {where}); fix with one of: "
        f"`apt-get install dataset-fashion-mnist`, `fashiongan download`, or `--data PATH`"
    )


@dataclass
class ImageDataset:
    """images: uint8 N×H×W grayscale or N×3×H×W colour (0 = black background); labels: int64 N
    in [0, n_classes) (all 0 for an unlabelled set, whose one class is 'all')."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    source: str
    checksum: str  # sha256 of the whole set's images and labels, before subsetting/resizing
    labelled: bool = True

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[1]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


def _canon(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").replace("/", " ").split())


def parse_class(value: str | int, class_names: tuple[str, ...]) -> int:
    """'sneaker', 'Sneaker', 'ankle-boot', 'ankle_boot' or '7' → 7."""
    text = str(value).strip().lower()
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    canon = _canon(text)
    for i, name in enumerate(class_names):
        if canon == _canon(name) or canon in (_canon(part) for part in name.split("/")):
            return i
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(class_names))
    raise FashionGANError(f"unknown class {value!r}; choose a name or id: {listing}")


def _read_split(found: tuple[Path, Path] | Path) -> tuple[np.ndarray, np.ndarray, str]:
    if isinstance(found, Path):
        images, labels = read_csv(found)
        return images, labels, str(found)
    image_path, label_path = found
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise FashionGANError(
            f"{image_path}: expected N×S×S square images, found shape {images.shape}"
        )
    if labels.ndim != 1:
        raise FashionGANError(
            f"{label_path}: expected a 1-D label array, found shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise FashionGANError(
            f"{image_path}: {len(images)} images but {label_path.name} has {len(labels)} labels"
        )
    return images, labels.astype(np.int64), str(image_path.parent)


def balanced_subset(labels: torch.Tensor, n: int, n_classes: int, seed: int) -> torch.Tensor:
    """Indices of n samples, n // n_classes per class (the remainder to the first classes), drawn
    with `seed`; sorted so the subset keeps the file's order."""
    g = torch.Generator().manual_seed(seed)
    per_class = [n // n_classes + (c < n % n_classes) for c in range(n_classes)]
    picks = []
    for c, k in enumerate(per_class):
        members = torch.nonzero(labels == c).flatten()
        if k > len(members):
            raise FashionGANError(
                f"--subset {n}: class {c} has only {len(members)} images, {k} were asked for"
            )
        picks.append(members[torch.randperm(len(members), generator=g)[:k]])
    return torch.cat(picks).sort().values


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N×H×W (or N×C×H×W) → uint8 at size×size, bilinear (antialiased when shrinking),
    done once."""
    if images.shape[-1] == size:
        return images
    out = []
    for chunk in images.split(4096):  # bounded float memory: 4096×64×64×4 B = 64 MB
        x = F.interpolate(
            chunk[:, None].float() if chunk.ndim == 3 else chunk.float(),
            size=(size, size),
            mode="bilinear",
            align_corners=False,
            antialias=size < images.shape[-1],
        )
        x = x.round_().clamp_(0, 255).to(torch.uint8)
        out.append(x[:, 0] if chunk.ndim == 3 else x)
    return torch.cat(out)


def load_dataset(
    data: str | None = None,
    split: str = "train",
    subset: int = 0,
    seed: int = 0,
    image_size: int | None = None,
    env_dir: str | None = None,
    class_names: str = "auto",
    **own,
) -> ImageDataset:
    """Load a split into memory. subset > 0 keeps a seeded class-balanced subset; image_size
    resizes once (e.g. 64 for dcgan64). class_names: 'fashion', 'numeric', or 'auto' (Fashion-MNIST
    names when the split is the official one, recognised by checksum). `own`: OwnData's fields,
    for a user's folder or arrays (data/folder.py)."""
    if class_names not in CLASS_NAME_SETS:
        raise FashionGANError(
            f"--class-names {class_names!r}; choose one of: {', '.join(CLASS_NAME_SETS)}"
        )
    if split not in SPLITS:
        raise FashionGANError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if data is not None and is_own_layout(Path(data)):
        ds = _load_own(data, split, image_size, OwnData(**own))
    else:
        ds = _load_mnist_format(data, split, env_dir, class_names)
    if subset:
        if subset < ds.n_classes or subset > len(ds):
            raise FashionGANError(
                f"--subset {subset}: expected {ds.n_classes}..{len(ds)} (0 = whole split)"
            )
        keep = balanced_subset(ds.labels, subset, ds.n_classes, seed)
        ds.images, ds.labels = ds.images[keep], ds.labels[keep]
    if image_size is not None:
        ds.images = resize_images(ds.images, image_size)
    return ds


@dataclass
class OwnData:
    """How a user's images are read (the data section's flags of the same names)."""

    channels: int = 0
    fit: str = "crop"
    min_size: int = 8
    skip_bad: bool = False
    val_fraction: float = 0.1
    split_seed: int = 0
    cache_dir: Path | None = None


def own_options(data_cfg, cache_dir: Path | None = None) -> dict:
    """A run's data settings (config.DataConfig) → load_dataset's keywords for a user's set."""
    names = ("channels", "fit", "min_size", "skip_bad", "val_fraction", "split_seed")
    return {n: getattr(data_cfg, n) for n in names} | {"cache_dir": cache_dir}


def _load_own(data: str, split: str, image_size: int | None, o: OwnData) -> ImageDataset:
    from fashiongan.data.folder import Decoding
    from fashiongan.data.own import read_own

    if image_size is None:
        raise FashionGANError(f"--data {data}: a folder or array set needs the model's resolution")
    how = Decoding(image_size, o.channels, o.fit, o.min_size, o.skip_bad)
    raw, source, checksum = read_own(data, split, how, o.val_fraction, o.split_seed, o.cache_dir)
    labelled = raw.labels is not None
    labels = raw.labels if labelled else np.zeros(len(raw.images), np.int64)
    images = torch.from_numpy(np.ascontiguousarray(raw.images))
    return ImageDataset(
        images, torch.from_numpy(labels), raw.class_names, source, checksum, labelled
    )


def _load_mnist_format(data, split, env_dir, class_names) -> ImageDataset:
    images, labels, source = _read_split(find_data(data, split, env_dir))
    if len(images) == 0:
        raise FashionGANError(f"{source}: the {split} split holds no images")
    if labels.max() >= N_CLASSES or labels.min() < 0:
        bad = int(labels[(labels < 0) | (labels >= N_CLASSES)][0])
        raise FashionGANError(f"{source}: label {bad} is outside 0..{N_CLASSES - 1}")
    checksum = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    if class_names == "auto":
        class_names = "fashion" if checksum in FASHION_CHECKSUMS.values() else "numeric"
    names = FASHION_CLASSES if class_names == "fashion" else tuple(map(str, range(N_CLASSES)))
    images_t = torch.from_numpy(images.copy())
    return ImageDataset(images_t, torch.from_numpy(labels), names, source, checksum)


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W (or N×C×H×W) → float32 N×1×H×W (N×C×H×W) in [-1, 1]."""
    x = images_u8[:, None] if images_u8.ndim == 3 else images_u8
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float N×C×H×W in [-1, 1] → uint8 N×H×W when C = 1, else N×C×H×W (clamped, rounded)."""
    x = images[:, 0] if images.shape[1] == 1 else images
    return x.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class Batcher:
    """Endless stream of batches over an in-memory data set, one seeded permutation per epoch.

    Its position (epoch, batch index) is all the state it has, so resuming is exact: the
    permutation of epoch e depends only on (seed, e). Partial last batches are dropped.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int,
        device: torch.device,
        memory_format: torch.memory_format = torch.contiguous_format,
        shard: slice | None = None,
    ):
        """shard: this process's rows of each batch (torchrun); the permutation, the batch
        boundaries and the epochs stay global, so the ranks together see each image once."""
        if batch_size > len(images):
            raise FashionGANError(
                f"--batch-size {batch_size} is larger than the data set ({len(images)} images)"
            )
        self.images = images.to(device)  # uint8: 47 MB for 60k×28×28 even on the GPU
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.memory_format = memory_format
        self.shard = shard or slice(None)
        self.seed = seed
        self.epoch = 0
        self.index = 0
        self._perm: torch.Tensor | None = None

    @property
    def batches_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(len(self.images), generator=g).to(self.images.device)
        return self._perm

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (x float32 B×1×H×W in [-1, 1], y int64 B) on the batcher's device."""
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index, self._perm = self.epoch + 1, 0, None
        start = self.index * self.batch_size
        idx = self._permutation()[start : start + self.batch_size][self.shard]
        self.index += 1
        x = to_float(self.images[idx]).contiguous(memory_format=self.memory_format)
        return x, self.labels[idx]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index, self.seed = state["epoch"], state["index"], state["seed"]
        self._perm = None
