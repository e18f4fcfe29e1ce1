"""`fashiongan train`, `compare`, `sweep` and `presets`: the commands that train."""

import argparse
import datetime
import itertools
import json
import os
import signal
import sys
from pathlib import Path

from fashiongan.cli.common import (
    CFG_PREFIX,
    add_config_flags,
    apply_setting,
    cache_dir_from_env,
    config_from_args,
    names_arg,
    read_json,
    seed_arg,
)
from fashiongan.config import (
    RunConfig,
    from_dict,
    load_preset,
    preset_description,
    preset_names,
    saved_run_config,
    to_dict,
)
from fashiongan.errors import FashionGANError
from fashiongan.validation import validate


def train_parser(sub) -> None:
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


def augment_gain_parser(sub) -> None:
    p = sub.add_parser(
        "augment-gain",
        help="does GAN-synthetic data help a classifier with K real images per class?",
        description="For each K and seed: train a conditional GAN on K real images per class, "
        "then one fixed classifier on the K real images and one on them plus the GAN's images; "
        "report both test accuracies (mean ± std over seeds) in OUT/augment-gain.md and .json. "
        "The GAN: --preset (default small-data) and the training flags; --kimg is its budget "
        "(default 100). Rerunning with the same --out skips the cells already done.",
    )
    p.add_argument(
        "--preset", help=f"GAN recipe (default: small-data): {', '.join(preset_names())}"
    )
    p.add_argument("--out", required=True, help="directory for the GAN runs and the table")
    p.add_argument(
        "--per-class", type=_ints, default=(10, 50, 100, 600), metavar="K,K,...",
        help="real images per class (default: 10,50,100,600)",
    )  # fmt: skip
    p.add_argument("--seeds", type=_ints, default=(0, 1, 2), metavar="S,S,...",
                   help="seeds of the subset, GAN and samples (default: 0,1,2)")  # fmt: skip
    p.add_argument("--synthetic-per-class", type=int, default=500,
                   help="generated images per class added (default: 500)")  # fmt: skip
    p.add_argument("--classifier-steps", type=int, default=1000,
                   help="optimiser steps of each classifier (default: 1000)")  # fmt: skip
    add_config_flags(p)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers like 10,50,100") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected non-negative integers")
    return values


def cmd_augment_gain(args) -> int:
    from fashiongan.augment_gain import GainPlan, augment_gain

    if min(args.per_class) < 1 or args.synthetic_per_class < 1 or args.classifier_steps < 1:
        raise FashionGANError(
            "--per-class, --synthetic-per-class and --classifier-steps must be at least 1"
        )
    fixed = {"data.subset": "--per-class", "train.steps": "--kimg", "train.epochs": "--kimg",
             "train.max_time": "--kimg"}  # fmt: skip
    given = [path for path in fixed if CFG_PREFIX + path in vars(args)]
    if given:
        path = given[0]
        raise FashionGANError(
            f"--{path.split('.')[1].replace('_', '-')}: augment-gain sets it for every GAN; "
            f"use {fixed[path]}"
        )
    cfg = config_from_args(args, _base_config(args.preset or "small-data", None))
    validate(cfg)
    plan = GainPlan(args.per_class, args.seeds, args.synthetic_per_class, args.classifier_steps)
    augment_gain(args.out, cfg, cfg.train.kimg or 100.0, plan, cache_dir_from_env())
    return 0


def compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="train one run per loss (or preset) on the same budget and compare their metrics",
        description="Train the same recipe with each loss (--losses) or each preset (--presets) "
        "for the same budget and seeds, evaluate all of them, and write compare.md/.csv, "
        "fid.png (FID over training) and samples.png. Training flags apply to every run.",
    )
    p.add_argument(
        "--losses",
        type=names_arg,
        help="comma-separated losses (default: ragan,ns,minimax,lsgan,hinge,wgan-gp)",
    )
    p.add_argument("--presets", type=names_arg, help="comma-separated presets instead of losses")
    p.add_argument("--preset", help="base recipe for --losses (default: the default settings)")
    _many_runs_flags(p, "compare")


def _many_runs_flags(p, command: str) -> None:
    """The flags compare and sweep share: seeds, jobs, output, evaluation, training."""
    p.add_argument(
        "--seeds", type=seed_arg, nargs="+", default=[0], help="seeds per run (default: 0)"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default: 1)")
    p.add_argument("--out", help=f"directory (default: runs/{command}-<timestamp>)")
    p.add_argument(
        "--num-samples", type=int, default=10_000, help="images per final evaluation (10000)"
    )
    p.add_argument("--cas", action="store_true", help="also CAS (trains a classifier per run)")
    add_config_flags(p)


def sweep_parser(sub) -> None:
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


def _base_config(preset: str | None, config: str | None) -> RunConfig:
    """RunConfig defaults, or a named preset, or a JSON settings file (not both)."""
    if preset and config:
        raise FashionGANError("give --preset or --config, not both")
    if preset:
        return from_dict({**load_preset(preset), "name": preset}, origin=f"preset {preset}")
    if config:
        return from_dict(read_json(config, "--config"), origin=config)
    return RunConfig()


def cmd_train(args) -> int:
    from fashiongan.training.distributed import setup, teardown

    if args.resume:
        run_dir = Path(args.resume)
        if args.out and Path(args.out) != run_dir:
            raise FashionGANError("--resume RUN_DIR continues in RUN_DIR; drop --out")
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise FashionGANError(
                f"--resume {run_dir}: no config.json there (not a run directory?)"
            )
        cfg = saved_run_config(read_json(config_path), origin=str(config_path))
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
        cache_dir=cache_dir_from_env(),
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


def cmd_compare(args) -> int:
    from fashiongan.compare import DEFAULT_LOSSES, loss_variants, preset_variants

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
    from fashiongan.compare import compare as run_compare

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{command}-{stamp}"
    outcomes = run_compare(
        variants,
        out,
        jobs=args.jobs,
        num_samples=args.num_samples,
        with_cas=args.cas,
        cache_dir=cache_dir_from_env(),
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
    from fashiongan.compare import grid_variants

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
