"""The `fashiongan` command: train, generate, interpolate, export, serve, download, evaluate,
evaluator, compare, sweep, augment-gain, tensorboard, presets. One module per family of
subcommands; this one builds the parser and dispatches.

Only this package reads argv and the environment ($FASHIONGAN_DATA, $FASHIONGAN_CACHE). Every
FashionGANError becomes one line on stderr and exit status 2. `fashiongan --help` loads no torch:
each command imports what it needs when it runs.
"""

import argparse
import sys

from fashiongan._version import __version__
from fashiongan.cli.common import Parser, apply_setting  # noqa: F401 - apply_setting: API
from fashiongan.cli.evaluate import (
    cmd_download,
    cmd_evaluate,
    cmd_evaluator,
    download_parser,
    evaluate_parser,
    evaluator_parser,
)
from fashiongan.cli.sample import (
    cmd_export,
    cmd_generate,
    cmd_interpolate,
    cmd_serve,
    export_parser,
    generate_parser,
    interpolate_parser,
    serve_parser,
)
from fashiongan.cli.tracking import cmd_tensorboard, tensorboard_parser
from fashiongan.cli.train import (
    augment_gain_parser,
    cmd_augment_gain,
    cmd_compare,
    cmd_presets,
    cmd_sweep,
    cmd_train,
    compare_parser,
    sweep_parser,
    train_parser,
)
from fashiongan.errors import FashionGANError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fashiongan",
        description="Train, sample and evaluate GANs on "
        "Fashion-MNIST and other small labeled image sets.",
    )
    parser.add_argument("--version", action="version", version=f"fashiongan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train_parser(sub)
    generate_parser(sub)
    interpolate_parser(sub)
    export_parser(sub)
    serve_parser(sub)
    download_parser(sub)
    evaluate_parser(sub)
    evaluator_parser(sub)
    compare_parser(sub)
    sweep_parser(sub)
    augment_gain_parser(sub)
    tensorboard_parser(sub)
    sub.add_parser("presets", help="list the named training recipes")
    return parser


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
    "augment-gain": cmd_augment_gain,
    "tensorboard": cmd_tensorboard,
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
