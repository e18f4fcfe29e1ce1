"""The evaluator: a compact CNN whose logits and penultimate features replace Inception's for
FID, KID, IS, precision/recall, label accuracy and CAS. The shipped one is for Fashion-MNIST (28×28
grayscale, 10 classes); `fashiongan evaluator train --data DIR` makes one for any data set, its
input (channels, side, classes) and the data set's fingerprint recorded beside the weights.

The authors of FID advise a domain classifier for MNIST-like data (Heusel et al. 2017); ImageNet
Inception features on upscaled 28×28 grayscale give an IS near 1 for every model. The shipped
weights (`weights/evaluator.safetensors`) come from `fashiongan evaluator train` with the recipe
recorded in `weights/evaluator.json`, beside their SHA-256, the data checksum and the measured test
accuracy. Older evaluators (`evaluator.pt`, loaded with weights_only) still load.
"""

import dataclasses
import datetime
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_write_bytes, sha256_file

NAME = "fmnist-cnn"
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "evaluator.safetensors"
EVAL_SIZE = 28  # the shipped evaluator sees 28×28; larger images are shrunk (antialiased) first
# what an evaluator.json without "input" (the shipped one, and every one before 0.9) was made for
FASHION_INPUT = {"channels": 1, "size": EVAL_SIZE, "n_classes": 10}


@dataclass(frozen=True)
class Recipe:
    """How the evaluator (and every CAS classifier) is trained. Stored beside the weights."""

    channels: tuple[int, ...] = (16, 32)  # per resolution stage: 28, 14 (, 7)
    convs: tuple[int, ...] = (2, 2)  # 3×3 conv + BN + ReLU layers per stage
    features: int = 256  # penultimate feature size (FID/KID/PR space)
    epochs: int = 15
    batch_size: int = 128
    lr: float = 2e-3  # AdamW peak: linear warm-up (10% of steps), cosine decay to 0
    weight_decay: float = 5e-4
    dropout: float = 0.3
    shift: int = 2  # random translation of up to ±shift pixels (zero padding = black)
    flip: bool = True  # random horizontal flip
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class EvaluatorNet(nn.Module):
    """x: float32 N×C×S×S in [-1, 1] → logits N×n_classes; `features` gives the N×F penultimate.

    Stages at S, S/2 and S/4 pixels (2×2 max-pool between), each `convs[i]` 3×3 conv-BN-ReLU
    layers of `channels[i]`; then flatten → linear → BN → ReLU: the feature vector. Sides above
    32 start with a stride-2 max-pool per doubling, so the cost stays that of a 32-pixel net."""

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32),
        convs: tuple[int, ...] = (2, 2),
        features: int = 256,
        dropout: float = 0.3,
        in_channels: int = 1,
        size: int = EVAL_SIZE,
        n_classes: int = 10,
    ):
        super().__init__()
        if len(channels) != len(convs) or not 1 <= len(channels) <= 3:
            raise ValueError(f"channels {channels} and convs {convs}: 1 to 3 stages each")
        self.in_channels, self.size = in_channels, size
        layers: list[nn.Module] = []
        cin = in_channels
        while size > 32:
            layers.append(nn.AvgPool2d(2))
            size //= 2
        for stage, (c, n) in enumerate(zip(channels, convs)):
            if stage:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            for _ in range(n):
                layers += [
                    nn.Conv2d(cin, c, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c),
                    nn.ReLU(),
                ]
                cin = c
        layers += [nn.Flatten(), nn.Linear(cin * size * size, features, bias=False),
                   nn.BatchNorm1d(features), nn.ReLU()]  # fmt: skip
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.body(x)))


def build_net(recipe: Recipe, shape: dict = FASHION_INPUT) -> EvaluatorNet:
    """The net of `recipe` for images of `shape` (channels, size, n_classes)."""
    return EvaluatorNet(
        recipe.channels,
        recipe.convs,
        recipe.features,
        recipe.dropout,
        shape["channels"],
        shape["size"],
        shape["n_classes"],
    )


def prepare(images: torch.Tensor, size: int = EVAL_SIZE, channels: int = 1) -> torch.Tensor:
    """uint8 N×H×W or N×C×H×W → float32 N×C×size×size in [-1, 1], resized (antialiased
    bilinear) when the side differs. Colour images for a grayscale net are refused."""
    if images.dtype != torch.uint8:
        raise FashionGANError(f"the evaluator takes uint8 images, got {images.dtype}")
    x = images if images.ndim == 4 else images[:, None]
    if x.shape[1] != channels:
        kind = {1: "grayscale", 3: "colour"}
        raise FashionGANError(
            f"the evaluator takes {kind.get(channels, channels)} images, these are "
            f"{kind.get(x.shape[1], x.shape[1])}; pass --evaluator of one trained on this data "
            "(`fashiongan evaluator train --data DIR`)"
        )
    x = x.float().div_(127.5).sub_(1.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x


def _augment(x: torch.Tensor, shift: int, flip: bool, g: torch.Generator) -> torch.Tensor:
    """Random per-image translation by up to ±shift pixels (black fill) and horizontal flip,
    by one gather: no per-image Python."""
    n, c, h, w = x.shape
    if shift:
        padded = F.pad(x, (shift,) * 4, value=-1.0)
        dy = torch.randint(0, 2 * shift + 1, (n, 1, 1), generator=g)
        dx = torch.randint(0, 2 * shift + 1, (n, 1, 1), generator=g)
        rows = (dy + torch.arange(h).view(1, h, 1)).to(x.device)
        cols = (dx + torch.arange(w).view(1, 1, w)).to(x.device)
        sample = torch.arange(n, device=x.device).view(n, 1, 1)
        x = torch.stack([padded[sample, k, rows, cols] for k in range(c)], 1)
    if flip:
        mirror = (torch.rand(n, generator=g) < 0.5).to(x.device)
        x = torch.where(mirror.view(n, 1, 1, 1), x.flip(-1), x)
    return x


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: Recipe = Recipe(),
    progress: Callable[[int, int, float], None] | None = None,
    device: str | torch.device = "cpu",
    shape: dict = FASHION_INPUT,
) -> EvaluatorNet:
    """Train a fresh EvaluatorNet for images of `shape` (channels, size, n_classes) on uint8
    N×H×W (N×C×H×W) images and int64 labels in [0, n_classes) with `recipe` (seeded;
    bit-reproducible on CPU). progress(epoch, epochs, train_loss) is called after every epoch.
    Returns the net in eval mode on `device`. The caller's global RNG state is left as it was."""
    dev = torch.device(device)
    forked = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(recipe.seed)  # weight init and dropout
        return _train(images, labels, recipe, progress, dev, shape)


def _train(images, labels, recipe: Recipe, progress, device, shape) -> EvaluatorNet:
    g = torch.Generator().manual_seed(recipe.seed)
    x_all = prepare(images, shape["size"], shape["channels"]).to(device)
    y_all = labels.long().to(device)
    # channels-last convolutions run ~20% faster on CPU (oneDNN) and no slower on CUDA
    net = build_net(recipe, shape).to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    total_steps = recipe.epochs * math.ceil(len(x_all) / recipe.batch_size)
    warmup = max(1, total_steps // 10)

    def schedule(t: int) -> float:  # linear warm-up over 10% of the steps, then cosine to 0
        return min(1.0, (t + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * t / total_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    net.train()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(x_all), generator=g).to(device)
        total = torch.zeros((), device=device)
        for idx in order.split(recipe.batch_size):
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = _augment(x_all[idx], recipe.shift, recipe.flip, g)
            x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * len(idx)
        if progress is not None:
            progress(epoch + 1, recipe.epochs, float(total) / len(x_all))
    return net.to(memory_format=torch.contiguous_format).eval()


@torch.no_grad()
def run_net(
    net: EvaluatorNet, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 N×H×W (N×C×H×W) → (features float32 N×F, logits float32 N×n_classes), in eval
    mode, on CPU."""
    net.eval()
    device = next(net.parameters()).device
    feats, logits = [], []
    for chunk in images.split(batch_size):
        f = net.features(prepare(chunk, net.size, net.in_channels).to(device))
        feats.append(f.float().cpu())
        logits.append(net.head(f).float().cpu())
    if not feats:
        return torch.zeros(0, net.head.in_features), torch.zeros(0, net.head.out_features)
    return torch.cat(feats), torch.cat(logits)


def accuracy(net: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of uint8 images whose arg-max class equals int64 labels."""
    _, logits = run_net(net, images)
    return float((logits.argmax(1) == labels).float().mean())


class Evaluator:
    """The loaded evaluator: `evaluate(images)` → features and logits; `id` names it in every
    score (name + SHA-256 prefix of the weights file)."""

    def __init__(self, net: EvaluatorNet, info: dict):
        self.net = net.eval()
        self.info = info
        self.sha256 = info["sha256"]
        self.id = f"{info.get('name', NAME)}-{self.sha256[:12]}"
        self.input = info.get("input", FASHION_INPUT)
        self.n_classes = self.input["n_classes"]
        self.directory: Path | None = None  # where it was loaded from (its reference statistics)

    def features(self, images: torch.Tensor, batch_size: int = 1000):
        """uint8 N×H×W (any H=W, shrunk to 28) → (features N×F, logits N×10), float32 CPU."""
        return run_net(self.net, images, batch_size)

    evaluate = features  # its name before 0.2

    def to(self, device: torch.device | str) -> "Evaluator":
        self.net.to(device)
        return self


def save_evaluator(directory: Path, net: EvaluatorNet, info: dict) -> Path:
    """Write evaluator.safetensors (floating tensors stored as float16 to halve the shipped
    file; loading casts them back to float32) and evaluator.json (recipe, sha256, accuracy)."""
    from safetensors.torch import save

    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    state = {
        k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in net.state_dict().items()
    }
    atomic_write_bytes(weights, save(state, {"format": "fashiongan-evaluator"}))
    info = {"name": NAME, **info, "sha256": sha256_file(weights), "file": weights.name}
    atomic_write_bytes(directory / "evaluator.json", (json.dumps(info, indent=2) + "\n").encode())
    return weights


def _read_weights(path: Path) -> dict:
    """A state dict from evaluator.safetensors, or from an older evaluator.pt."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load

        return load(path.read_bytes())
    return torch.load(path, map_location="cpu", weights_only=True)


def load_evaluator(directory: str | Path | None = None, verify: bool = True) -> Evaluator:
    """Load the weights + evaluator.json from `directory` (default: the shipped evaluator),
    refusing a file whose SHA-256 differs from the one recorded beside it."""
    directory = Path(directory) if directory is not None else WEIGHTS_DIR
    meta_path = directory / "evaluator.json"
    if not meta_path.is_file():
        raise FashionGANError(
            f"no evaluator in {directory} (expected {WEIGHTS_FILE} + evaluator.json); "
            f"train one with `fashiongan evaluator train --out {directory}`"
        )
    try:
        info = json.loads(meta_path.read_text())
        recipe = Recipe.from_dict(info["recipe"])
        weights = directory / Path(info.get("file", "evaluator.pt")).name
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise FashionGANError(f"{meta_path}: not an evaluator description ({e})") from None
    if not weights.is_file():
        raise FashionGANError(f"{directory}: {weights.name} (named in evaluator.json) is missing")
    digest = sha256_file(weights)
    if verify and digest != info.get("sha256"):
        raise FashionGANError(
            f"{weights}: SHA-256 {digest[:12]}… differs from {str(info.get('sha256'))[:12]}… "
            f"recorded in {meta_path.name}; the weights were changed or damaged"
        )
    net = build_net(recipe, info.get("input", FASHION_INPUT))
    try:
        net.load_state_dict(_read_weights(weights))  # float16 tensors are cast on copy
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line, not a traceback
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise FashionGANError(f"{weights}: cannot load the evaluator ({first})") from None
    evaluator = Evaluator(net, info)
    evaluator.directory = directory
    return evaluator


def train_evaluator(
    train_set,
    test_set,
    out: Path,
    recipe: Recipe = Recipe(),
    log: Callable[[str], None] = print,
    data_options: dict | None = None,
    data_path: str | None = None,
) -> Evaluator:
    """Train on `train_set`, measure on `test_set` (both ImageDataset, already at the
    evaluator's side), save to `out` with the data's fingerprint and how it was read
    (`data_options`: load_dataset's keywords, so evaluate reads the same images)."""
    start = time.perf_counter()
    shape = {
        "channels": train_set.channels,
        "size": train_set.image_size,
        "n_classes": train_set.n_classes,
    }
    name = NAME if shape == FASHION_INPUT else "cnn"
    log(f"training {name} on {len(train_set)} images, {shape} ({recipe})")
    net = train_classifier(
        train_set.images,
        train_set.labels,
        recipe,
        progress=lambda e, n, loss: log(
            f"  epoch {e}/{n}  loss {loss:.4f}  {time.perf_counter() - start:.0f} s"
        ),
        shape=shape,
    )
    seconds = time.perf_counter() - start
    info = {
        "name": name,
        "recipe": dataclasses.asdict(recipe),
        "train_checksum": train_set.checksum,
        "test_checksum": test_set.checksum,
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if shape != FASHION_INPUT or data_options:
        info.update(input=shape, class_names=list(train_set.class_names))
        info.update(data=data_path or train_set.source, data_options=data_options or {})
        info.update(train_part=train_set.source, test_part=test_set.source)
    # accuracy of the weights as shipped (float16 round trip), written before the hash is taken
    save_evaluator(out, net, info)
    shipped = load_evaluator(out, verify=False).net
    info["train_accuracy"] = round(accuracy(shipped, train_set.images, train_set.labels), 6)
    info["test_accuracy"] = round(accuracy(shipped, test_set.images, test_set.labels), 6)
    info["test_images"] = len(test_set)
    log(
        f"train accuracy {info['train_accuracy']:.4f}, test accuracy "
        f"{info['test_accuracy']:.4f} on {len(test_set)} images ({seconds:.0f} s of training, "
        f"{seconds / len(train_set) * 1e4 / 60:.1f} min per 10k training images, all epochs)"
    )
    save_evaluator(out, net, info)
    return load_evaluator(out)


def evaluator_for_data(
    out: str | Path,
    data: str | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
    **own,
) -> Evaluator:
    """`fashiongan evaluator train`: an evaluator for the data set at `data` (default: the
    Fashion-MNIST search path) at `image_size` (default 28 for MNIST-format data, 32 for a
    user's images), trained on its train split (or part) and measured on its test split (or
    held-out part). own: how a user's images are read (config.DataConfig's names)."""
    from fashiongan.config import from_dict
    from fashiongan.data.datasets import default_cache_dir, load_dataset
    from fashiongan.data.folder import is_own_layout
    from fashiongan.validation import check_numbers

    recipe = Recipe()
    recipe = recipe if epochs is None else dataclasses.replace(recipe, epochs=epochs)
    recipe = recipe if seed is None else dataclasses.replace(recipe, seed=seed)
    mine = data is not None and is_own_layout(Path(data))
    size = image_size or (32 if mine else None)
    if size is not None and not 8 <= size <= 256:
        raise FashionGANError(f"--image-size {size}: expected 8..256")
    options = own if mine else {}
    check_numbers(from_dict({"data": options}, "flags"))
    env = os.environ.get("FASHIONGAN_DATA")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    parts = [
        load_dataset(data, split, image_size=size, env_dir=env, **options, cache_dir=cache)
        for split in ("train", "test")
    ]
    if not parts[0].labelled:
        raise FashionGANError(f"--data {data}: an evaluator needs labelled images")
    return train_evaluator(*parts, Path(out), recipe, log, options, data)
