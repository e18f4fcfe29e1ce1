"""`fashiongan download`, `evaluate` and `evaluator`: real data and the metrics."""

import argparse
import json
import os
from pathlib import Path

from fashiongan.cli.common import (
    Parser,
    cache_dir_from_env,
    ema_flag,
    seed_arg,
)
from fashiongan.errors import FashionGANError
from fashiongan.metrics import defaults


def download_parser(sub) -> None:
    from fashiongan.data.download import OFFICIAL_URL

    p = sub.add_parser("download", help="fetch the official Fashion-MNIST files (checksummed)")
    p.add_argument("--dir", help="where to write (default: ~/.cache/fashiongan, searched by train)")
    p.add_argument("--mirror", default=OFFICIAL_URL, help=f"base URL (default: {OFFICIAL_URL})")
    p.add_argument("--force", action="store_true", help="download even if verified files exist")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: 60)")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (drawn only on a terminal)"
    )


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


def _metric_listing() -> str:
    from fashiongan.metrics.suite import METRICS

    listing = "; ".join(f"{n}: {METRICS.get(n).summary}" for n in METRICS.names())
    return f"Metrics (evaluator feature space, floors beside each): {listing}."


def evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model or an image set against real Fashion-MNIST",
        describe=_metric_listing,  # the registry loads torch: only when this help is shown
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
        "--against",
        metavar="SOURCE",
        help="compare with this model or image set instead of the real split (any kind SOURCE "
        "takes; a model is sampled with the same --seed and --num-samples; no floors)",
    )
    p.add_argument(
        "--features",
        default="evaluator",
        choices=["evaluator", "inception"],
        help="inception: FID, KID, IS and precision/recall in ImageNet Inception-v3 space too, "
        "comparable with papers (beside the evaluator's, never instead; the inception extra; "
        "minutes on a CPU) (default: evaluator)",
    )
    p.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="a local copy of torch-fidelity's weights-inception-2015-12-05-6726825d.pth "
        "(default: downloaded once into the cache; the SHA-256 is checked either way)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=defaults.NUM_SAMPLES,
        help=f"images to sample from a model (default: {defaults.NUM_SAMPLES}; files are used "
        f"whole)",
    )
    p.add_argument(
        "--reference",
        default=defaults.REFERENCE_SPLITS[0],
        choices=defaults.REFERENCE_SPLITS,
        help=f"real split (default: {defaults.REFERENCE_SPLITS[0]})",
    )
    p.add_argument("--seed", type=seed_arg, default=0, help="latent and subset seed (default: 0)")
    p.add_argument("--out", help="report directory (default: <run>/eval or <name>-eval beside)")
    ema_flag(p, "use")
    p.add_argument(
        "--memorization-samples",
        type=int,
        default=defaults.MEMORIZATION_SAMPLES,
        help=f"judged images searched against the 60k training images (default: "
        f"{defaults.MEMORIZATION_SAMPLES})",
    )
    p.add_argument(
        "--cas-per-class",
        type=int,
        default=defaults.CAS_PER_CLASS,
        help=f"generated images per class CAS trains on (default: {defaults.CAS_PER_CLASS}, the "
        f"real train split's size; an image set is used as it is)",
    )
    p.add_argument("--data", help="real data directory or CSV (default: the usual search path)")
    p.add_argument(
        "--evaluator",
        metavar="DIR",
        help="an evaluator directory (evaluator.json + weights; default: the shipped one)",
    )
    p.add_argument(
        "--force-evaluator",
        action="store_true",
        help="score even when --evaluator was trained on other data than --data",
    )
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="(default: cpu)"
    )


def add_own_data_flags(p) -> None:
    """The reading of a user's images, as `train` has them (config.DataConfig)."""
    from fashiongan.config import DataConfig, flat_fields

    for path, f in flat_fields():
        name = path.rsplit(".", 1)[-1]
        if not path.startswith("data.") or name not in OWN_FLAGS:
            continue
        flag = "--" + name.replace("_", "-")
        kw = dict(default=getattr(DataConfig(), name), help=f.metadata["help"])
        if f.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            p.add_argument(flag, type=f.type, choices=f.metadata.get("choices"), **kw)


OWN_FLAGS = ("channels", "fit", "min_size", "skip_bad", "val_fraction", "split_seed")


def evaluator_parser(sub) -> None:
    p = sub.add_parser("evaluator", help="train or inspect an evaluator network")
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    t = actions.add_parser(
        "train",
        help="train an evaluator (Fashion-MNIST's recipe, or on --data: your own images)",
    )
    t.add_argument(
        "--out", required=True, help="directory for evaluator.safetensors + evaluator.json"
    )
    t.add_argument("--epochs", type=int, help="override the recipe's epochs")
    t.add_argument("--seed", type=seed_arg, help="override the recipe's seed")
    t.add_argument(
        "--data",
        help="data: IDX/CSV directory, a folder of images or an NPZ (default: the usual search "
        "path for Fashion-MNIST)",
    )
    t.add_argument(
        "--image-size",
        type=int,
        help="the side the evaluator sees (default: 28 for MNIST-format data, 32 for your own "
        "images; larger sides are pooled down to 32 inside the net)",
    )
    add_own_data_flags(t)
    i = actions.add_parser("info", help="print the evaluator's identity, recipe and accuracy")
    i.add_argument("dir", nargs="?", help="evaluator directory (default: the shipped one)")
    s = actions.add_parser(
        "stats",
        help="write its reference statistics of the real splits (FID without the data set)",
    )
    s.add_argument("dir", nargs="?", help="evaluator directory (default: the shipped one)")
    s.add_argument("--data", help="the evaluator's data (default: the usual search path)")


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
    if args.inception_weights and args.features != "inception":
        raise FashionGANError(
            "--inception-weights is for --features inception; add that or drop it"
        )
    result = evaluate(
        args.source,
        metrics=args.metrics,
        num_samples=args.num_samples,
        reference=args.reference,
        seed=args.seed,
        out=args.out,
        evaluator=load_evaluator(args.evaluator),
        cache_dir=cache_dir_from_env(),
        data=args.data,
        env_dir=os.environ.get("FASHIONGAN_DATA"),
        ema=args.ema,
        device=pick_device(args.device),
        memorization_samples=args.memorization_samples,
        cas_per_class=args.cas_per_class,
        force_evaluator=args.force_evaluator,
        against=args.against,
        inception=args.features == "inception",
        inception_weights=args.inception_weights,
    )
    p = result.results["provenance"]
    versus = p.get("reference") if p["split"] == "against" else f"the real {p['split']} split"
    print(
        f"\n{p['n_fake']} images vs {versus} ({p['n_real']}), evaluator "
        f"{p['evaluator']}, {p['seconds']:.1f} s\n"
    )
    print(format_table(result.results))
    for note in p.get("notes", []):
        print(f"note: {note}")
    print(f"\nreport: {result.out_dir / 'report.md'}\nvalues: {result.out_dir / 'metrics.json'}")
    return 0


def cmd_evaluator(args) -> int:
    from fashiongan.metrics.evaluator import WEIGHTS_FILE, evaluator_for_data, load_evaluator

    if args.action == "stats":
        from fashiongan.metrics.offline import write_reference_stats

        ev = load_evaluator(args.dir)
        env = os.environ.get("FASHIONGAN_DATA")
        path = write_reference_stats(ev, cache_dir_from_env(), args.data, env)
        print(f"wrote {path} ({ev.id})")
        return 0
    if args.action == "info":
        ev = load_evaluator(args.dir)
        info = ev.info
        print(
            f"{ev.id}  test accuracy {info['test_accuracy']:.4f}  train accuracy "
            f"{info['train_accuracy']:.4f}\nsha256 {info['sha256']}\n"
            f"data: train {info['train_checksum'][:16]}…, test {info['test_checksum'][:16]}…\n"
            + (
                f"made for {info['data']}: {ev.input['channels']} channel(s), "
                f"{ev.input['size']} px, {ev.input['n_classes']} classes\n"
                if "data" in info
                else ""
            )
            + f"recipe: {json.dumps(info['recipe'])}\n"
            f"trained in {info['train_seconds']} s with torch {info['torch']} ({info['created']})"
        )
        return 0
    if args.epochs is not None and args.epochs < 1:
        raise FashionGANError(f"--epochs {args.epochs}: must be at least 1")
    own = {n: getattr(args, n) for n in OWN_FLAGS}
    ev = evaluator_for_data(
        args.out, args.data, args.image_size, args.epochs, args.seed, cache_dir_from_env(), **own
    )
    print(f"wrote {ev.directory / WEIGHTS_FILE} ({ev.id}); use it with --evaluator {args.out}")
    return 0
