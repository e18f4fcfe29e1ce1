"""Run configuration: one dataclass per concern, nested in RunConfig. Defaults live only here;
the CLI turns each field into a kebab-case flag whose help is the field's `help`."""

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fashiongan.errors import FashionGANError
from fashiongan.presets import load_preset, preset_description, preset_names  # noqa: F401

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes what fits a signed 64-bit integer
INT_RANGE = (-(2**63), 2**63 - 1)  # every integer setting ends up in a torch or numpy int64


def _f(default: Any, help: str, **meta: Any) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class DataConfig:
    data: str | None = _f(
        None,
        "directory of IDX files, a Kaggle CSV file, a folder of images (one sub-folder per "
        "class, or labels.csv) or an NPZ/NPY file (default: "
        "$FASHIONGAN_DATA, ./data, ~/.cache/fashiongan, "
        "/usr/share/datasets/fashion-mnist)",
    )
    split: str = _f("train", "which split to train on", choices=("train", "test"))
    subset: int = _f(0, "keep N images, balanced per class and seeded (0 = the whole split)", min=0)
    class_names: str = _f(
        "auto",
        "class names: 'fashion', 'numeric', or 'auto' (Fashion-MNIST names for the official data)",
        choices=("auto", "fashion", "numeric"),
    )
    channels: int = _f(
        0,
        "your own images: 1 (grayscale) or 3 (colour) forces the channels; 0 = colour when any "
        "image has colour",
        choices=(0, 1, 3),
        omit_default=True,
    )
    fit: str = _f(
        "crop",
        "your own images: make each square by a centre crop or by black padding, before the "
        "bicubic resize to the model's resolution",
        choices=("crop", "pad"),
        omit_default=True,
    )
    min_size: int = _f(
        8, "your own images: refuse (or --skip-bad) images smaller than this", min=1,
        omit_default=True,
    )  # fmt: skip
    skip_bad: bool = _f(
        False,
        "your own images: leave out unreadable, too small and duplicate files (counted) "
        "instead of stopping",
        omit_default=True,
    )
    val_fraction: float = _f(
        0.1,
        "a set with no test split: the share of each class held out (seeded, stratified) "
        "for evaluation, never trained on",
        min=0,
        lt=1,
        expect="a fraction in [0, 1)",
        omit_default=True,
    )
    split_seed: int = _f(
        0, "seed of the held-out split (kept apart from --seed)", min=0, max=SEED_MAX,
        omit_default=True,
    )  # fmt: skip


@dataclass
class ModelConfig:
    model: str = _f("dcgan28", "architecture", registry="models")
    cond: str = _f(
        "projection", "conditioning on the class label", choices=("none", "concat", "projection")
    )
    z_dim: int = _f(100, "latent dimension", min=1)
    width: float = _f(
        1.0,
        "G's width multiplier, and D's when --d-width is 0: base feature maps = 64 × width",
        gt=0,
        expect="a positive number",
    )
    d_width: float = _f(
        0.5, "D's own width multiplier, apart from G's (0 = --width, the same as G's)"
    )
    g_depth: int = _f(
        0,
        "G's extra 3×3 stride-1 conv layers (each with its norm and ReLU) per resolution",
        min=0,
        expect="0 (DCGAN) or more extra layers",
    )
    d_depth: int = _f(
        1,
        "D's extra 3×3 stride-1 conv layers (each with its activation) per resolution",
        min=0,
        expect="0 (DCGAN) or more extra layers",
    )
    embed_dim: int = _f(32, "label embedding size concatenated to z (--cond concat)", min=1)
    spectral_norm: bool = _f(False, "spectral normalisation on D's layers (Miyato et al. 2018)")
    d_norm: str = _f("none", "normalisation in D after the first layer", choices=("none", "batch"))
    mbstd: int = _f(
        0,
        "minibatch standard deviation in D: append the feature spread of each group of N "
        "samples as one more channel before D's last layer (Karras et al. 2018; 0 = off)",
    )


@dataclass
class LossConfig:
    loss: str = _f("ragan", "adversarial loss", registry="losses")
    label_smoothing: float = _f(
        1.0,
        "target for real images in D's loss, e.g. 0.9 (one-sided label smoothing; 1.0 = off)",
        gt=0.5,
        max=1.0,
        expect="the real-image target in (0.5, 1], e.g. 0.9 (1.0 = off)",
    )
    gp_weight: float = _f(10.0, "λ of the gradient penalty of --loss wgan-gp and wgan-lp", min=0)
    r1: float = _f(0.1, "γ of the R1 penalty γ/2·‖∇D(x)‖² on real images (0 = off)", min=0)
    r2: float = _f(
        0.0,
        "γ of the R2 penalty γ/2·‖∇D(G(z))‖² on generated images, on R1's lazy steps; with R1 "
        "it keeps D smooth around both distributions (Roth et al. 2017; R3GAN, Huang et al. "
        "2024) (0 = off)",
        min=0,
    )
    r1_every: int = _f(
        16,
        "lazy R1 and R2: apply them every N iterations, weighted ×N, so they cost 1/N as much "
        "(Karras et al. 2020 use 16)",
        min=1,
    )
    weight_clip: float = _f(
        0.01, "clip D's weights to ±c after each D step (--loss wgan)", gt=0, expect="positive"
    )
    aux_weight: float | None = _f(
        None,
        "AC-GAN auxiliary classifier: weight of the class cross-entropy D learns on real images "
        "and G minimises on its samples (0 = off; unset = 1 for a conditional model, off for "
        "--cond none)",
        min=0,
    )
    reg: tuple[str, ...] = _f(
        (),
        "more regularisers of D, as NAME=STRENGTH (repeat the flag for several), applied on "
        "R1's lazy steps: dragan=10 (Kodali et al. 2017)",
        registry="regularizers",
        omit_default=True,
    )


@dataclass
class TrainConfig:
    epochs: int = _f(20, "stop after this many passes over the data (0 = no epoch limit)", min=0)
    steps: int = _f(0, "stop after this many iterations (0 = no step limit)", min=0)
    kimg: float = _f(
        0.0, "stop after D has seen this many thousand real images (0 = no limit)", min=0
    )
    max_time: float = _f(
        0.0,
        "stop after this much wall time: seconds, or 90s/10m/2h (0 = no limit)",
        duration=True,
        min=0,
    )
    batch_size: int = _f(
        64, "images per batch (under torchrun: the global batch, split over ranks)", min=1
    )
    g_steps: int = _f(1, "G updates per iteration", min=1)
    d_steps: int = _f(1, "D updates per iteration (each on a new real batch)", min=1)
    reuse_fakes: bool = _f(
        True,
        "with one D and one G update per iteration: G draws the iteration's fakes once, with "
        "autograd, and the G update reuses the D update's fakes (same z and labels) instead of "
        "drawing new ones; saves one G forward per step, a sixth of a CPU step",
    )
    lr_g: float = _f(4e-3, "Adam learning rate of G", gt=0, expect="positive")
    lr_d: float = _f(
        2e-3, "Adam learning rate of D (the default is half of G's)", gt=0, expect="positive"
    )
    betas: tuple[float, float] = _f(
        (0.0, 0.99), "Adam betas (two numbers)", min=0, lt=1, expect="two numbers in [0, 1)"
    )
    lr_decay: str = _f(
        "none",
        "learning-rate schedule: constant, or decaying to 0 at the end of the budget "
        "(--lr-decay-start sets where it begins)",
        choices=("none", "linear", "cosine"),
    )
    lr_decay_start: float = _f(
        0.5,
        "fraction of the budget (steps, kimg, epochs or --max-time, whichever ends first) after "
        "which the learning rates decay",
        min=0,
        lt=1,
        expect="a fraction of the budget in [0, 1)",
    )
    instance_noise: float = _f(
        0.0,
        "std of Gaussian noise added to D's inputs, annealed linearly to 0 (0 = off)",
        min=0,
    )
    augment: str = _f(
        "none",
        "differentiable augmentation of every image D sees, real and generated, in both updates: "
        "diffaug = DiffAugment's color, translation and cutout (Zhao et al. 2020), for data "
        "sets of a few hundred to a few thousand images; ada = adaptive augmentation (Karras et "
        "al. 2020): each transform with a probability p that follows D's overfitting",
        choices=("none", "diffaug", "ada"),
        omit_default=True,
    )
    augment_p: float | None = _f(
        None,
        "--augment ada: a fixed augmentation probability instead of the adaptive one",
        min=0,
        max=1,
        omit_default=True,
    )
    ada_target: float = _f(
        0.6,
        "--augment ada: the target of D's overfitting signal E[sign(D(real))]",
        gt=0,
        lt=1,
        expect="a number in (0, 1)",
        omit_default=True,
    )
    ada_kimg: float = _f(
        100.0,
        "--augment ada: thousands of images over which p can move from 0 to 1 (the paper's 500 "
        "suits runs of tens of millions of images; ours on a CPU are far shorter)",
        gt=0,
        expect="a positive number",
        omit_default=True,
    )
    noise_kimg: float = _f(
        0.0,
        "anneal instance noise to 0 over this many thousand images "
        "(0 = over the run's planned length, fixed when the run starts)",
        min=0,
    )
    grad_clip: float = _f(0.0, "clip the gradient norm of G and D to this value (0 = off)", min=0)
    on_nan: str = _f(
        "stop",
        "when a loss or gradient turns NaN/Inf: stop (keep the last good checkpoint), skip "
        "that update, or rollback (reload the last checkpoint, halve both learning rates)",
        choices=("stop", "skip", "rollback"),
    )
    max_rollbacks: int = _f(3, "--on-nan rollback: stop after this many rollbacks", min=0)
    ema_kimg: float = _f(
        40.0,
        "half-life of the EMA of G's weights, in thousands of images "
        "(0 = no EMA); samples use the EMA",
        min=0,
    )
    ema_rampup: float = _f(0.2, "EMA half-life is at most this fraction of the images seen", min=0)
    seed: int = _f(0, "seed of everything random: init, data order, noise", min=0, max=SEED_MAX)
    device: str = _f("auto", "where to train", choices=("auto", "cpu", "cuda", "mps"))
    threads: int = _f(0, "CPU threads for torch (0 = torch's default)", min=0)
    channels_last: bool = _f(
        True,
        "keep G's and D's weights and images channels-last (NHWC), the layout oneDNN's CPU "
        "convolutions run fastest in (same results up to float rounding)",
    )
    compile: bool = _f(
        False,
        "torch.compile G and D for the training step (the gradient penalties run eagerly: "
        "compiled graphs have no double backward); the first steps are slow while it compiles",
    )
    precision: str = _f(
        "auto",
        "arithmetic of the training step on a GPU: fp32, tf32 (float32 with TensorFloat-32 "
        "matrix units), or bf16 (autocast; losses, penalties and weights stay float32); auto "
        "= tf32 on CUDA, fp32 elsewhere",
        choices=("auto", "fp32", "tf32", "bf16"),
    )
    adam: str = _f(
        "auto",
        "Adam implementation: foreach (multi-tensor) or fused (one kernel per optimiser); "
        "auto = fused on CUDA and CPU, foreach elsewhere",
        choices=("auto", "foreach", "fused"),
    )
    sync_bn: bool = _f(
        False,
        "under torchrun: BatchNorm statistics over the global batch (all ranks) instead of each "
        "rank's shard; slower (one all-reduce per BatchNorm layer), and what makes N processes "
        "train as one",
    )
    cuda_graph: bool = _f(
        False,
        "CUDA only: record the whole training step (both updates, EMA, statistics) once as a "
        "CUDA graph and replay it, so a small batch is not bound by kernel-launch overhead",
    )


@dataclass
class LogConfig:
    log_every: int = _f(50, "write metrics.jsonl and refresh the progress bar every N steps", min=1)
    sample_every: int = _f(
        0,
        "fixed-noise grid every N steps (0 = once per epoch, or per 10k images for smaller sets)",
        min=0,
    )
    ckpt_every: int = _f(
        0,
        "checkpoint every N steps (0 = once per epoch, or per 10k images for smaller sets)",
        min=0,
    )
    keep: int = _f(3, "numbered checkpoints to keep besides latest/final (0 = keep all)", min=0)
    grid_seeds: int = _f(10, "columns of the class × seed sample grid", min=1)
    progress: bool = _f(True, "show a progress bar when stderr is a terminal")
    eval_every: int = _f(
        0,
        "every N steps: FID, IS and label accuracy of --eval-samples images, logged, plotted, "
        "and checkpoints/best.pt kept by FID (0 = off)",
        min=0,
    )
    eval_samples: int = _f(5000, "images per --eval-every evaluation", min=100,
                           expect="at least 100 (IS uses 10 splits)")  # fmt: skip
    evaluator: str | None = _f(
        None, "evaluator directory for --eval-every and compare (default: the shipped one)"
    )
    eval_features: str = _f("evaluator", "--eval-every: inception adds the FID in ImageNet "
        "Inception-v3 space (inception_fid; the inception extra; costly on a CPU)",
        choices=("evaluator", "inception"), omit_default=True)  # fmt: skip
    inception_weights: str | None = _f(None, "a local copy of the Inception weights file for "
        "--eval-features inception (default: downloaded once into the cache)",
        omit_default=True)  # fmt: skip
    tensorboard: bool = _f(False, "also write TensorBoard event files (every metrics.jsonl "
        "column, the grids, the config) into RUN/tensorboard (the tensorboard extra)",
        omit_default=True)  # fmt: skip


@dataclass
class RunConfig:
    name: str = _f("run", "run name (used in the default --out)")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)


SECTIONS = ("data", "model", "loss", "train", "log")


def saved_run_config(d: dict, origin: str) -> RunConfig:
    """The RunConfig of a run's config.json or checkpoint. Those hold every field; a run made
    before the auxiliary classifier existed (no loss.aux_weight) trained without one, and one
    made before lazy R1 (no loss.r1_every) applied R1 every step, one made before
    --d-width (no model.d_width) sized D as G, and one made before --d-depth had no extra
    layers in D."""
    before = {
        "loss": {"aux_weight": 0.0, "r1_every": 1},
        "model": {"d_width": 0.0, "d_depth": 0},
    }
    for section, old in before.items():
        saved = d.get(section)
        if isinstance(saved, dict):
            d = {**d, section: {**{k: v for k, v in old.items() if k not in saved}, **saved}}
    return from_dict(d, origin)


def aux_weight(cfg: RunConfig) -> float:
    """The auxiliary-classifier weight in force: --aux-weight, else 1 for a conditional model."""
    if cfg.loss.aux_weight is not None:
        return cfg.loss.aux_weight
    return 0.0 if cfg.model.cond == "none" else 1.0


# fields that may change when resuming without --override: budgets and logging
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.steps",
    "train.kimg",
    "train.max_time",
    "train.device",
    "train.threads",
    "train.channels_last",
    "train.compile",
    "train.precision",
    "train.adam",
    "train.cuda_graph",
    "train.sync_bn",
    "train.on_nan",
    "train.max_rollbacks",
} | {f"log.{f.name}" for f in dataclasses.fields(LogConfig)}


def to_dict(cfg: RunConfig) -> dict:
    """The nested dict a run saves. Settings added after 0.1 (marked `omit_default`) are left
    out while at their default, so a run that does not use them stays readable by 0.1."""
    d = dataclasses.asdict(cfg)
    for path, f in flat_fields():
        if f.metadata.get("omit_default") and get_path(cfg, path) == _default(f):
            section, name = path.split(".")
            d[section].pop(name)
    return d


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def flat_fields() -> list[tuple[str, dataclasses.Field]]:
    """('section.name', Field) for every leaf field, in declaration order."""
    out = [("name", next(f for f in dataclasses.fields(RunConfig) if f.name == "name"))]
    for section in SECTIONS:
        cls = type(getattr(RunConfig(), section))
        out += [(f"{section}.{f.name}", f) for f in dataclasses.fields(cls)]
    return out


def from_dict(d: dict, origin: str = "config") -> RunConfig:
    """Build a RunConfig from a nested dict, rejecting unknown keys."""
    cfg = RunConfig()
    for key, value in d.items():
        if key == "name":
            cfg.name = str(value)
        elif key in SECTIONS and isinstance(value, dict):
            section = getattr(cfg, key)
            names = {f.name for f in dataclasses.fields(section)}
            for k, v in value.items():
                if k not in names:
                    raise FashionGANError(
                        f"{origin}: unknown key {key}.{k}; valid keys: {', '.join(sorted(names))}"
                    )
                setattr(section, k, tuple(v) if isinstance(v, list) else v)
        else:
            raise FashionGANError(
                f"{origin}: unknown key {key!r}; expected name, {', '.join(SECTIONS)}"
            )
    return cfg


def flag(path: str) -> str:
    """'train.max_time' → '--max-time' (the CLI flag of a field)."""
    return "--" + path.rsplit(".", 1)[-1].replace("_", "-")


def or_list(items, word: str = "or") -> str:
    """['a', 'b', 'c'] → 'a, b or c' (or 'a, b and c' with word='and')."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def choices_of(path: str) -> tuple[str, ...]:
    """The `choices` a field states ('model.cond' → ('none', 'concat', 'projection'))."""
    return tuple(dict(flat_fields())[path].metadata["choices"])


def get_path(cfg: RunConfig, path: str) -> Any:
    obj = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_path(cfg: RunConfig, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    obj = cfg
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, leaf, value)


def diff(a: RunConfig, b: RunConfig) -> list[tuple[str, Any, Any]]:
    """(path, a's value, b's value) for every leaf field that differs."""
    return [
        (p, get_path(a, p), get_path(b, p))
        for p, _ in flat_fields()
        if get_path(a, p) != get_path(b, p)
    ]


def parse_duration(text: str | float) -> float:
    """'600', '90s', '10m', '1.5h' → seconds."""
    s = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if s and s[-1] in units:
            value = float(s[:-1]) * units[s[-1]]
        else:
            value = float(s)
    except ValueError:
        raise FashionGANError(
            f"--max-time {text!r}: expected seconds or a duration such as 90s, 10m, 2h"
        ) from None
    if not value >= 0 or value == float("inf"):  # NaN fails every comparison
        raise FashionGANError(
            f"--max-time {text!r}: expected a finite, non-negative duration (0 = no limit)"
        )
    return value
