"""The `fashiongan` command: train, generate, interpolate, download, presets.

Only this module reads argv and the environment ($FASHIONGAN_DATA). Every FashionGANError
becomes one line on stderr and exit status 2.
"""

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import signal
import sys
import types
from pathlib import Path

from fashiongan._version import __version__
from fashiongan.config import (
    SEED_MAX,
    RunConfig,
    flat_fields,
    from_dict,
    get_path,
    load_preset,
    parse_duration,
    preset_description,
    preset_names,
    saved_run_config,
    set_path,
    to_dict,
)
from fashiongan.errors import FashionGANError

CFG_PREFIX = "cfg:"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except FashionGANError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _choices(meta: dict) -> list[str] | None:
    if meta.get("registry") == "models":
        from fashiongan.models import MODELS

        return MODELS.names()
    if meta.get("registry") == "losses":
        from fashiongan.losses import LOSSES

        return LOSSES.names()
    return list(meta["choices"]) if "choices" in meta else None


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig leaf field: --batch-size, --lr-g, --spectral-norm/--no-..."""
    for path, f in flat_fields():
        flag = "--" + f.name.replace("_", "-")
        meta, dest = f.metadata, CFG_PREFIX + path
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f"{meta.get('help', '')} (default: {default})"
        kw = dict(dest=dest, default=argparse.SUPPRESS, help=help_text)
        ftype = f.type
        if ftype is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif meta.get("duration"):
            parser.add_argument(flag, type=_duration, metavar="TIME", **kw)
        elif "tuple" in str(ftype):
            parser.add_argument(flag, type=float, nargs=2, metavar=("B1", "B2"), **kw)
        else:
            if isinstance(ftype, types.UnionType):  # str | None
                ftype = next(a for a in ftype.__args__ if a is not type(None))
            parser.add_argument(flag, type=ftype, choices=_choices(meta), **kw)


def config_from_args(args: argparse.Namespace, base: RunConfig) -> RunConfig:
    """Apply the config flags given on the command line (and only those) to `base`."""
    for key, value in vars(args).items():
        if key.startswith(CFG_PREFIX):
            set_path(
                base, key[len(CFG_PREFIX) :], tuple(value) if isinstance(value, list) else value
            )
    return base


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN",
        description=(
            "Train a (conditional) DCGAN. Settings: RunConfig defaults, then --preset, then "
            "flags. Stops at the first budget reached (--epochs, --steps, --kimg, --max-time) "
            "or at Ctrl-C (which checkpoints first)."
        ),
    )
    p.add_argument("--preset", help=f"named recipe: {', '.join(preset_names())}")
    p.add_argument(
        "--config", metavar="FILE", help="settings from a JSON file (a preset's or config.json)"
    )
    p.add_argument("--out", help="run directory (default: runs/<name>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument(
        "--override",
        action="store_true",
        help="with --resume: accept flags that change the run's settings",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    add_config_flags(p)


def _add_generator_args(p: argparse.ArgumentParser, class_help: str) -> None:
    """What generate and interpolate share: the model to load and the classes to use."""
    p.add_argument(
        "source", help="run directory, checkpoint file or exported .safetensors generator"
    )
    p.add_argument("--class", dest="classes", action="append", metavar="CLASS", help=class_help)
    _ema_flag(p, "use")


def _ema_flag(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"{verb} the EMA generator when the checkpoint has one (default: yes)",
    )


def _generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="sample images into a grid or a data set")
    _add_generator_args(p, "class name or id; repeat for several (default: all classes)")
    p.add_argument("--out", required=True, help="output file (.png, .npz, .csv) or directory")
    p.add_argument(
        "--format",
        help="png (grid) | pngs (folder per class) | npz | idx | csv "
        "(default: from --out's extension)",
    )
    p.add_argument("--num-samples", type=int, default=100, help="images in all (default: 100)")
    p.add_argument("--per-class", type=int, help="images per class (overrides --num-samples)")
    p.add_argument("--seed", type=_seed, default=0, help="latent seed (default: 0)")
    p.add_argument("--batch-size", type=int, default=1000, help="generation batch (default: 1000)")
    p.add_argument(
        "--force", action="store_true", help="replace an existing --out file of another kind"
    )
    p.add_argument("--size", type=int, help="resize outputs to SIZE×SIZE (e.g. 28 for dcgan64)")
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="(default: cpu)"
    )


def _interpolate_parser(sub) -> None:
    p = sub.add_parser("interpolate", help="latent walks between seeds or classes")
    _add_generator_args(
        p, "one: walk within this class; two or more: walk across them with z fixed"
    )
    p.add_argument("--out", required=True, help="walk.png (strip, a row per walk) or walk.gif")
    p.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        default=[0, 1, 2, 3],
        help="walk from each seed to the next (default: 0 1 2 3)",
    )
    p.add_argument("--steps", type=int, default=10, help="frames per walk (default: 10)")
    p.add_argument(
        "--mode",
        default="slerp",
        choices=["slerp", "lerp"],
        help="spherical or linear interpolation of z (default: slerp)",
    )


def _export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="write a trained generator as a portable, code-free weights file"
    )
    p.add_argument("source", help="run directory or checkpoint file")
    p.add_argument("--out", required=True, help="output file, e.g. generator.safetensors")
    p.add_argument(
        "--format",
        default="safetensors",
        choices=["safetensors"],
        help="safetensors: G's weights with the run's settings as metadata; `generate`, "
        "`evaluate` and load_generator() read it back (default: safetensors)",
    )
    _ema_flag(p, "export")


def _serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="an HTTP API and a web page over trained generators (the serve extra)"
    )
    p.add_argument(
        "sources", nargs="+", help="run directories, checkpoints or .safetensors; each is a model"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--max-n", type=int, default=1024, help="most images per request (default: 1024)"
    )
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="(default: cpu)"
    )


def _download_parser(sub) -> None:
    from fashiongan.data.download import OFFICIAL_URL

    p = sub.add_parser("download", help="fetch the official Fashion-MNIST files (checksummed)")
    p.add_argument("--dir", help="where to write (default: ~/.cache/fashiongan, searched by train)")
    p.add_argument("--mirror", default=OFFICIAL_URL, help=f"base URL (default: {OFFICIAL_URL})")
    p.add_argument("--force", action="store_true", help="download even if verified files exist")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: 60)")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (drawn only on a terminal)"
    )


def _seed(text: str) -> int:
    """An argparse type: a seed torch and numpy take, 0..2^63-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed {text!r}: expected an integer") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"--seed {value}: expected 0..{SEED_MAX}")
    return value


def memory_bytes() -> int:
    """This machine's physical memory (POSIX; 2^63 where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2**63


def _metric_names(text: str) -> list[str]:
    from fashiongan.metrics.suite import METRICS

    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return METRICS.names()
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown metric {', '.join(unknown) or repr(text)}; choose from: "
            f"{', '.join(METRICS.names())}, or all"
        )
    return names


def _evaluate_parser(sub) -> None:
    from fashiongan.metrics.suite import METRICS, REFERENCE_SPLITS

    listing = "; ".join(f"{n}: {METRICS.get(n).summary}" for n in METRICS.names())
    p = sub.add_parser(
        "evaluate",
        help="score a model or an image set against real Fashion-MNIST",
        description=f"Metrics (evaluator feature space, floors beside each): {listing}.",
    )
    p.add_argument(
        "source",
        help="run directory, checkpoint (.pt), .npz, IDX images file, .csv or PNG folder",
    )
    p.add_argument(
        "--metrics",
        type=_metric_names,
        help="comma-separated names, or all (default: every metric that applies except cas, "
        "which trains a classifier for minutes)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=10_000,
        help="images to sample from a model (default: 10000; files are used whole)",
    )
    p.add_argument(
        "--reference", default="test", choices=REFERENCE_SPLITS, help="real split (default: test)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="latent and subset seed (default: 0)")
    p.add_argument("--out", help="report directory (default: <run>/eval or <name>-eval beside)")
    _ema_flag(p, "use")
    p.add_argument(
        "--memorization-samples",
        type=int,
        default=2000,
        help="judged images searched against the 60k training images (default: 2000)",
    )
    p.add_argument(
        "--cas-per-class",
        type=int,
        default=6000,
        help="generated images per class CAS trains on (default: 6000, the real train split's "
        "size; an image set is used as it is)",
    )
    p.add_argument("--data", help="real data directory or CSV (default: the usual search path)")
    p.add_argument(
        "--evaluator", metavar="DIR", help="evaluator.pt + evaluator.json (default: shipped)"
    )
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="(default: cpu)"
    )


def _evaluator_parser(sub) -> None:
    p = sub.add_parser("evaluator", help="train or inspect the Fashion-MNIST evaluator network")
    actions = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    t = actions.add_parser("train", help="train the evaluator with the recorded recipe")
    t.add_argument("--out", required=True, help="directory for evaluator.pt + evaluator.json")
    t.add_argument("--epochs", type=int, help="override the recipe's epochs")
    t.add_argument("--seed", type=_seed, help="override the recipe's seed")
    t.add_argument("--data", help="data directory or CSV (default: the usual search path)")
    i = actions.add_parser("info", help="print the evaluator's identity, recipe and accuracy")
    i.add_argument("dir", nargs="?", help="evaluator directory (default: the shipped one)")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="train one run per loss (or preset) on the same budget and compare their metrics",
        description="Train the same recipe with each loss (--losses) or each preset (--presets) "
        "for the same budget and seeds, evaluate all of them, and write compare.md/.csv, "
        "fid.png (FID over training) and samples.png. Training flags apply to every run.",
    )
    p.add_argument(
        "--losses",
        type=_names,
        help="comma-separated losses (default: ragan,ns,minimax,lsgan,hinge,wgan-gp)",
    )
    p.add_argument("--presets", type=_names, help="comma-separated presets instead of losses")
    p.add_argument("--preset", help="base recipe for --losses (default: the default settings)")
    _many_runs_flags(p, "compare")


def _many_runs_flags(p, command: str) -> None:
    """The flags compare and sweep share: seeds, parallel jobs, output, evaluation, training."""
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0], help="seeds per run (default: 0)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default: 1)")
    p.add_argument("--out", help=f"directory (default: runs/{command}-<timestamp>)")
    p.add_argument(
        "--num-samples", type=int, default=10_000, help="images per final evaluation (10000)"
    )
    p.add_argument("--cas", action="store_true", help="also CAS (trains a classifier per run)")
    add_config_flags(p)


def _sweep_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="train every combination of a grid of settings × seeds in parallel and compare them",
        description="Train one run per point of a grid (each --grid KEY=V1,V2,... multiplies it) "
        "and per seed, --jobs at a time, evaluate all of them, and write compare.md/.csv with "
        "mean ± std over seeds, fid.png and samples.png. Training flags apply to every run. "
        "Example: fashiongan sweep --grid lr_g=1e-3,4e-3 --grid width=0.5,1 --seeds 0 1 2 "
        "--jobs 2 --max-time 5m",
    )
    p.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="KEY=V1,V2",
        help="a training setting (as its flag without --, e.g. lr_g or lr-g) and the values to "
        "try; repeat to add a dimension. A two-number setting (betas) writes its numbers with "
        "'/': betas=0/0.99,0.5/0.999",
    )
    p.add_argument("--preset", help="base recipe (default: the default settings)")
    _many_runs_flags(p, "sweep")


class _RaisingParser(_Parser):
    def error(self, message: str):
        raise FashionGANError(message)


def apply_setting(cfg: RunConfig, key: str, text: str) -> None:
    """cfg's field `key` (lr_g, lr-g or train.lr_g) set from `text`, parsed by its
    `fashiongan train` flag, so types and choices are the CLI's. Booleans: true/false; two-number
    settings: '0/0.99'."""
    fields = {path: path for path, _ in flat_fields()}
    fields.update({path.rsplit(".", 1)[-1]: path for path in list(fields)})
    path = fields.get(key.replace("-", "_"))
    if path is None:
        raise FashionGANError(f"{key!r} is not a training setting (see fashiongan train --help)")
    flag = "--" + path.rsplit(".", 1)[-1].replace("_", "-")
    if isinstance(get_path(cfg, path), bool):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise FashionGANError(f"{key}={text}: expected true or false")
        argv = [flag if text.lower() in ("true", "1", "yes") else "--no-" + flag[2:]]
    else:
        argv = [flag, *text.split("/")]
    parser = _RaisingParser(prog=f"{key}={text}", add_help=False)
    add_config_flags(parser)
    try:
        config_from_args(parser.parse_args(argv), cfg)
    except FashionGANError as e:
        raise FashionGANError(f"{key}={text}: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fashiongan",
        description="Train, sample and evaluate GANs on "
        "Fashion-MNIST and other small labeled image sets.",
    )
    parser.add_argument("--version", action="version", version=f"fashiongan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_parser(sub)
    _generate_parser(sub)
    _interpolate_parser(sub)
    _export_parser(sub)
    _serve_parser(sub)
    _download_parser(sub)
    _evaluate_parser(sub)
    _evaluator_parser(sub)
    _compare_parser(sub)
    _sweep_parser(sub)
    sub.add_parser("presets", help="list the named training recipes")
    return parser


def _cache_dir() -> Path | None:
    """$FASHIONGAN_CACHE: where reference features and floors are cached."""
    value = os.environ.get("FASHIONGAN_CACHE")
    return Path(value) if value else None


def _install_stop_handler():
    from fashiongan.training.loop import StopFlag

    stop = StopFlag()

    def handle(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        print(
            f"\n{signal.Signals(signum).name}: finishing this step and writing a checkpoint "
            f"(press Ctrl-C again to abort at once)",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop


def _read_json(path: str | Path, flag: str = "") -> dict:
    """A JSON object of settings (a --config file or a run's config.json), or a one-line error
    naming `flag` when the path came from one."""
    where = f"{flag} {path}" if flag else str(path)
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise FashionGANError(f"{where}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FashionGANError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise FashionGANError(f"{where}: expected a JSON object of settings")
    return d


def _base_config(preset: str | None, config: str | None) -> RunConfig:
    """RunConfig defaults, or a named preset, or a JSON settings file (not both)."""
    if preset and config:
        raise FashionGANError("give --preset or --config, not both")
    if preset:
        return from_dict({**load_preset(preset), "name": preset}, origin=f"preset {preset}")
    if config:
        return from_dict(_read_json(config, "--config"), origin=config)
    return RunConfig()


def cmd_train(args) -> int:
    from fashiongan.training.distributed import setup, teardown
    from fashiongan.training.loop import validate

    if args.resume:
        run_dir = Path(args.resume)
        if args.out and Path(args.out) != run_dir:
            raise FashionGANError("--resume RUN_DIR continues in RUN_DIR; drop --out")
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise FashionGANError(
                f"--resume {run_dir}: no config.json there (not a run directory?)"
            )
        cfg = saved_run_config(_read_json(config_path), origin=str(config_path))
        if args.preset or args.config:
            raise FashionGANError(
                "--preset/--config cannot be combined with --resume (the run has its settings)"
            )
    else:
        cfg = _base_config(args.preset, args.config)
    cfg = config_from_args(args, cfg)
    validate(cfg)
    if args.dry_run:
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    ranks = setup(cfg.train.device)  # under torchrun: join the other ranks
    try:
        return _train_ranks(args, cfg, ranks)
    finally:
        teardown(ranks)


def _train_ranks(args, cfg: RunConfig, ranks) -> int:
    """cmd_train's run, on every rank under torchrun (rank 0 alone prints the summary)."""
    from fashiongan.training.distributed import broadcast
    from fashiongan.training.loop import train

    if args.resume:
        run_dir = Path(args.resume)
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out) if args.out else Path("runs") / f"{cfg.name}-{stamp}"
    run_dir = broadcast(run_dir, ranks)  # rank 0's time stamp names the run for every rank
    stop = _install_stop_handler()
    result = train(
        cfg,
        run_dir,
        resume=bool(args.resume),
        data_env=os.environ.get("FASHIONGAN_DATA"),
        stop=stop,
        override=args.override,
        cache_dir=_cache_dir(),
        ranks=ranks,
    )
    if not ranks.main:
        return 0
    rd = result.run_dir
    speed = (
        f" ({result.trained_nimg / result.seconds:.0f} img/s in this run, incl. per-epoch grids "
        f"and checkpoints)"
        if result.trained_nimg and result.seconds > 0
        else ""
    )
    print(
        f"run directory: {rd}\n  checkpoint: {result.final_checkpoint}\n"
        f"  samples:    {rd / 'samples'} (progress.gif, grid-*.png)\n"
        f"  plots:      {rd / 'plots'}\n  metrics:    {rd / 'metrics.jsonl'}\n"
        f"  at step {result.step}, {result.nimg / 1000:.1f} kimg; this invocation trained "
        f"{result.trained_nimg / 1000:.1f} kimg in {result.seconds:.0f} s{speed}"
    )
    if result.stopped_by == "interrupt":
        print(f"interrupted: continue with  fashiongan train --resume {rd}")
    else:
        print(f"next: fashiongan generate {rd} --per-class 10 --out samples.png")
    return 0


def cmd_generate(args) -> int:
    from fashiongan.data.datasets import resize_images
    from fashiongan.devices import pick_device
    from fashiongan.export import check_output, export, infer_format
    from fashiongan.sampling import latents, load_generator

    out = Path(args.out)
    fmt = infer_format(out, args.format)
    for name, value in (
        ("--num-samples", args.num_samples),
        ("--batch-size", args.batch_size),
        ("--per-class", args.per_class),
        ("--size", args.size),
    ):
        if value is not None and value < 1:
            raise FashionGANError(f"{name} {value}: must be at least 1")
    check_output(out, fmt, args.force)
    gen = load_generator(args.source, ema=args.ema, device=pick_device(args.device))
    n_classes = len(args.classes or gen.class_names) if gen.conditional else 1
    n = args.per_class * n_classes if args.per_class else args.num_samples
    side = args.size or gen.resolution
    need = n * (gen.z_dim * 4 + max(side, gen.resolution) ** 2)  # latents (float32) + images
    if need > memory_bytes() // 2:
        what = f"--per-class {args.per_class}" if args.per_class else f"--num-samples {n}"
        raise FashionGANError(
            f"{what}: {n} images need ~{need / 1e9:.1f} GB in memory, more than half of this "
            f"machine's {memory_bytes() / 1e9:.0f} GB; generate it in parts (--seed 0, 1, ...)"
        )
    y = gen.labels(args.classes, n=args.num_samples, per_class=args.per_class)
    n = len(y) if y is not None else args.num_samples
    images = gen.images(latents(args.seed, n, gen.z_dim), y, args.batch_size)
    if args.size:
        images = resize_images(images, args.size)
    ncol = args.per_class or min(n, 10)
    labels = None if y is None else y.numpy()
    written = export(out, images.numpy(), labels, fmt, gen.class_names, ncol=ncol)
    where = out if len(written) > 1 or fmt in ("idx", "pngs") else written[0]
    print(
        f"wrote {n} images ({fmt}, {images.shape[-1]}×{images.shape[-1]}) to {where} "
        f"from step {gen.step} ({'EMA' if args.ema else 'raw'} generator)"
    )
    return 0


def cmd_export(args) -> int:
    from fashiongan.checkpoint import load_checkpoint, resolve_checkpoint
    from fashiongan.portable import export_generator
    from fashiongan.sampling import load_generator

    ckpt = resolve_checkpoint(args.source)
    state = load_checkpoint(ckpt)
    load_generator(ckpt, ema=args.ema)  # the weights must fit their model before they leave
    ema = export_generator(state, args.out, ema=args.ema)
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out} ({size / 1e6:.2f} MB, {'EMA' if ema else 'raw'} generator of step "
        f"{state['step']} from {ckpt}); load it with fashiongan generate {args.out} or "
        f"fashiongan.load_generator({str(args.out)!r})"
    )
    return 0


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from fashiongan.serve.app import MAX_DRAIN, create_app
    except ImportError as e:
        raise FashionGANError(
            f"serve needs the serve extra ({e.name} is missing): pip install 'fashiongan[serve]'"
        ) from None
    from fashiongan.devices import pick_device
    from fashiongan.sampling import load_generator

    if not 1 <= args.max_n <= 100_000:
        raise FashionGANError(f"--max-n {args.max_n}: expected 1..100000")
    if not 0 <= args.port <= 65535:
        raise FashionGANError(f"--port {args.port}: expected 0..65535")
    device = pick_device(args.device)
    generators = [(Path(s), load_generator(s, device=device)) for s in args.sources]
    app = create_app(generators, max_n=args.max_n)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: --host {args.host} makes the server reachable from other machines; it "
            f"has no authentication",
            file=sys.stderr,
        )
    for (src, gen), mid in zip(generators, app.state.served):
        print(f"model {mid}: {src} (step {gen.step}, {len(gen.class_names)} classes)")
    print(f"serving on http://{args.host}:{args.port}/  (API docs: /docs; Ctrl-C stops)")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        h11_max_incomplete_event_size=MAX_DRAIN,  # answer 414, not a reset (serve.app)
    )
    return 0


def cmd_interpolate(args) -> int:
    from fashiongan.data.datasets import parse_class
    from fashiongan.sampling import interpolation_frames, load_generator, save_interpolation

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "gif"):
        raise FashionGANError(f"--out {out}: expected a .png (strip) or .gif (animation) name")
    gen = load_generator(args.source, ema=args.ema)
    classes = [parse_class(c, gen.class_names) for c in args.classes] if args.classes else None
    frames = interpolation_frames(gen, args.seeds, classes, args.steps, args.mode)
    save_interpolation(out, frames, fmt)
    print(f"wrote {frames.shape[0]} walks × {frames.shape[1]} frames to {out}")
    return 0


def cmd_download(args) -> int:
    from fashiongan.data.datasets import default_cache_dir
    from fashiongan.data.download import download

    directory = Path(args.dir) if args.dir else default_cache_dir()
    paths = download(
        directory, args.mirror, args.timeout, progress=not args.no_progress, force=args.force
    )
    print(f"verified {len(paths)} files in {directory}")
    if args.dir:
        print(f"train with --data {directory} (or export FASHIONGAN_DATA={directory})")
    return 0


def cmd_evaluate(args) -> int:
    from fashiongan.devices import pick_device
    from fashiongan.metrics.evaluate import evaluate
    from fashiongan.metrics.evaluator import load_evaluator
    from fashiongan.reports.evaluation import format_table

    if args.memorization_samples < 1:
        raise FashionGANError(
            f"--memorization-samples {args.memorization_samples}: must be at least 1"
        )
    result = evaluate(
        args.source,
        metrics=args.metrics,
        num_samples=args.num_samples,
        reference=args.reference,
        seed=args.seed,
        out=args.out,
        evaluator=load_evaluator(args.evaluator),
        cache_dir=_cache_dir(),
        data=args.data,
        env_dir=os.environ.get("FASHIONGAN_DATA"),
        ema=args.ema,
        device=pick_device(args.device),
        memorization_samples=args.memorization_samples,
        cas_per_class=args.cas_per_class,
    )
    p = result.results["provenance"]
    print(
        f"\n{p['n_fake']} images vs the real {p['split']} split ({p['n_real']}), evaluator "
        f"{p['evaluator']}, {p['seconds']:.1f} s\n"
    )
    print(format_table(result.results))
    for note in p.get("notes", []):
        print(f"note: {note}")
    print(f"\nreport: {result.out_dir / 'report.md'}\nvalues: {result.out_dir / 'metrics.json'}")
    return 0


def cmd_evaluator(args) -> int:
    import dataclasses as dc

    from fashiongan.data.datasets import load_dataset
    from fashiongan.metrics.evaluator import Recipe, load_evaluator, train_evaluator

    if args.action == "info":
        ev = load_evaluator(args.dir)
        info = ev.info
        print(
            f"{ev.id}  test accuracy {info['test_accuracy']:.4f}  train accuracy "
            f"{info['train_accuracy']:.4f}\nsha256 {info['sha256']}\n"
            f"data: train {info['train_checksum'][:16]}…, test {info['test_checksum'][:16]}…\n"
            f"recipe: {json.dumps(info['recipe'])}\n"
            f"trained in {info['train_seconds']} s with torch {info['torch']} ({info['created']})"
        )
        return 0
    recipe = Recipe()
    for name in ("epochs", "seed"):
        value = getattr(args, name)
        if value is not None:
            if name == "epochs" and value < 1:
                raise FashionGANError(f"--epochs {value}: must be at least 1")
            recipe = dc.replace(recipe, **{name: value})
    env = os.environ.get("FASHIONGAN_DATA")
    train_set = load_dataset(args.data, "train", env_dir=env)
    test_set = load_dataset(args.data, "test", env_dir=env)
    ev = train_evaluator(train_set, test_set, Path(args.out), recipe)
    print(f"wrote {Path(args.out) / 'evaluator.pt'} ({ev.id}); use it with --evaluator {args.out}")
    return 0


def cmd_compare(args) -> int:
    from fashiongan.training.compare import DEFAULT_LOSSES, loss_variants, preset_variants

    if args.losses and args.presets:
        raise FashionGANError("give --losses or --presets, not both")
    if args.presets and args.preset:
        raise FashionGANError("--preset sets the base for --losses; with --presets drop it")

    if args.presets:
        bases = {name: to_dict(_many_runs_base(args, name)) for name in args.presets}
        variants = preset_variants(bases, args.seeds)
    else:
        base = to_dict(_many_runs_base(args, args.preset))
        variants = loss_variants(base, args.losses or list(DEFAULT_LOSSES), args.seeds)
    return _run_many(args, variants, "compare", "loss/preset")


def _many_runs_base(args, preset: str | None) -> RunConfig:
    """A compare/sweep base: the preset with the training flags given, evaluated ~10 times
    during training unless --eval-every says otherwise (the point is the FID curve)."""
    cfg = config_from_args(args, _base_config(preset, None))
    if not cfg.log.eval_every:
        cfg.log.eval_every = _eval_interval(cfg)
    return cfg


def _run_many(args, variants: list, command: str, kind: str) -> int:
    """Train, evaluate and tabulate the variants of compare or sweep; print the table."""
    from fashiongan.training.compare import compare as run_compare

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{command}-{stamp}"
    outcomes = run_compare(
        variants,
        out,
        jobs=args.jobs,
        num_samples=args.num_samples,
        with_cas=args.cas,
        cache_dir=_cache_dir(),
        kind=kind,
    )
    print((out / "compare.md").read_text())
    failed = [o.variant.name for o in outcomes if not o.ok]
    if failed:
        print(f"failed: {', '.join(failed)} (logs in {out / 'logs'})", file=sys.stderr)
        return 1
    return 0


def _eval_interval(cfg: RunConfig) -> int:
    """About ten evaluations over the budget; every 500 steps under a time budget (a 10-minute
    default run makes ~5,600 steps on 2 cores)."""
    from fashiongan.training.loop import planned_steps

    steps = planned_steps(cfg, 60_000)
    return 500 if cfg.train.max_time or not steps else max(50, steps // 10)


def cmd_sweep(args) -> int:
    from fashiongan.training.compare import grid_variants

    base = _many_runs_base(args, args.preset)
    dims = []
    for item in args.grid:
        key, sep, values = item.partition("=")
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not texts:
            raise FashionGANError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. lr_g=1e-3,4e-3")
        dims.append([(key.strip(), t) for t in texts])
    points = []
    for combo in itertools.product(*dims):
        cfg = from_dict(to_dict(base))
        for key, text in combo:
            apply_setting(cfg, key, text)
        points.append((" ".join(f"{k}={t}" for k, t in combo), cfg))
    kind = " × ".join(dim[0][0] for dim in dims)
    return _run_many(args, grid_variants(points, args.seeds), "sweep", kind)


def cmd_presets(args) -> int:
    for name in preset_names():
        print(f"{name:16s} {preset_description(name)}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "generate": cmd_generate,
    "interpolate": cmd_interpolate,
    "export": cmd_export,
    "serve": cmd_serve,
    "download": cmd_download,
    "evaluate": cmd_evaluate,
    "evaluator": cmd_evaluator,
    "compare": cmd_compare,
    "sweep": cmd_sweep,
    "presets": cmd_presets,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130 aborted)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a flag error already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        return COMMANDS[args.command](args)
    except FashionGANError as e:
        print(f"fashiongan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no (disk full, permissions) outside our checks
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"fashiongan {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fashiongan {args.command}: aborted", file=sys.stderr)
        return 130
