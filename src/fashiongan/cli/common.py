"""What every subcommand's parser shares: one-line errors, argument types, and the config
flags made from RunConfig's fields (one flag per field, its help and default from the field)."""

import argparse
import dataclasses
import json
import os
import types
from pathlib import Path

from fashiongan.config import (
    SEED_MAX,
    RunConfig,
    flat_fields,
    get_path,
    parse_duration,
    set_path,
)
from fashiongan.errors import FashionGANError
from fashiongan.validation import field_choices

CFG_PREFIX = "cfg:"


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and exits 2. `describe`: a
    function giving the description, called only when the help is shown."""

    def __init__(self, *args, describe=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.describe = describe

    def format_help(self) -> str:
        if self.describe is not None:
            self.description, self.describe = self.describe(), None
        return super().format_help()

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except FashionGANError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class LazyChoices:
    """A field's allowed values, looked up when argparse first needs them: a registry's names
    load torch, which `fashiongan --help` and the other subcommands' parsers never need."""

    def __init__(self, meta):
        self.meta, self._names = meta, None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = field_choices(self.meta)
        return self._names

    def __contains__(self, value) -> bool:
        return value in self.names()

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


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
            parser.add_argument(flag, type=duration_arg, metavar="TIME", **kw)
        elif str(ftype) == "tuple[str, ...]":  # --reg dragan=10 --reg ...
            parser.add_argument(flag, action="append", metavar="NAME=STRENGTH", **kw)
        elif "tuple" in str(ftype):
            parser.add_argument(flag, type=float, nargs=2, metavar=("B1", "B2"), **kw)
        else:
            if isinstance(ftype, types.UnionType):  # str | None
                ftype = next(a for a in ftype.__args__ if a is not type(None))
            if "registry" in meta:  # listed when the help is shown: the registry loads torch
                kw["help"] = f"{meta.get('help', '')}: %(choices)s (default: {default})"
                kw["metavar"] = f.name.upper()
            choices = LazyChoices(meta) if "registry" in meta or "choices" in meta else None
            parser.add_argument(flag, type=ftype, choices=choices, **kw)


def config_from_args(args: argparse.Namespace, base: RunConfig) -> RunConfig:
    """Apply the config flags given on the command line (and only those) to `base`."""
    for key, value in vars(args).items():
        if key.startswith(CFG_PREFIX):
            set_path(
                base, key[len(CFG_PREFIX) :], tuple(value) if isinstance(value, list) else value
            )
    return base


def add_generator_args(p: argparse.ArgumentParser, class_help: str) -> None:
    """What generate and interpolate share: the model to load and the classes to use."""
    p.add_argument(
        "source", help="run directory, checkpoint file or exported .safetensors generator"
    )
    p.add_argument("--class", dest="classes", action="append", metavar="CLASS", help=class_help)
    ema_flag(p, "use")


def ema_flag(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"{verb} the EMA generator when the checkpoint has one (default: yes)",
    )


def seed_arg(text: str) -> int:
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


def names_arg(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


class RaisingParser(Parser):
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
    parser = RaisingParser(prog=f"{key}={text}", add_help=False)
    add_config_flags(parser)
    try:
        config_from_args(parser.parse_args(argv), cfg)
    except FashionGANError as e:
        raise FashionGANError(f"{key}={text}: {e}") from None


def cache_dir_from_env() -> Path | None:
    """$FASHIONGAN_CACHE: where reference features and floors are cached."""
    value = os.environ.get("FASHIONGAN_CACHE")
    return Path(value) if value else None


def read_json(path: str | Path, flag: str = "") -> dict:
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
