"""The Python API, the CLI's twin for notebooks and scripts: `fashiongan.train(...)` takes the
same settings as `fashiongan train` (flag names with _ for -) and returns the run;
`load_generator(...).sample(...)`, `fashiongan.grid(...)` and `fashiongan.evaluate(...)` do the
rest. Nothing here switches matplotlib's backend or hides the progress bar in Jupyter."""

import dataclasses
import datetime
import json
import os
import typing
from pathlib import Path
from typing import Any

from fashiongan.config import (
    RunConfig,
    flat_fields,
    from_dict,
    load_preset,
    parse_duration,
    saved_run_config,
    set_path,
)
from fashiongan.errors import FashionGANError

# leaf name → "section.name" (the names are unique across sections; the CLI flags are these)
_PATHS = {path.rsplit(".", 1)[-1]: (path, f) for path, f in flat_fields()}


def _typed(key: str, value: Any, kind: Any) -> Any:
    """`value` as the field's type (int, float, bool, str, X | None, tuple[float, float],
    tuple[str, ...]), or a
    one-line error naming the setting: the CLI's argparse types do this for the flags."""
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
        args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and args[-1] is Ellipsis:  # reg=("dragan=10", ...)
        items = (value,) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise FashionGANError(f"{key}={value!r}: expected a list of {args[0].__name__}")
        return tuple(_typed(key, v, args[0]) for v in items)
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise FashionGANError(f"{key}={value!r}: expected {len(args)} numbers")
        return tuple(_typed(key, v, a) for v, a in zip(value, args))
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(kind, True)
    if not ok:
        raise FashionGANError(f"{key}={value!r}: expected {getattr(kind, '__name__', kind)}")
    return float(value) if kind is float else value


def _settings(cfg: RunConfig, settings: dict[str, Any]) -> RunConfig:
    for key, value in settings.items():
        if key not in _PATHS:
            raise FashionGANError(
                f"unknown setting {key!r}; the settings are `fashiongan train` flags with _ for "
                f"-: {', '.join(sorted(_PATHS))}"
            )
        path, f = _PATHS[key]
        if f.metadata.get("duration") and isinstance(value, str):
            value = parse_duration(value)
        set_path(cfg, path, _typed(key, value, f.type))
    return cfg


def train(
    out: str | Path | None = None,
    *,
    preset: str | None = None,
    resume: bool = False,
    **settings: Any,
):
    """Train a run as `fashiongan train` does and return its RunResult (run_dir,
    final_checkpoint, step, nimg, seconds, stopped_by, trained_nimg).

    out: the run directory (default runs/<name>-<timestamp>); resume=True continues the run in
    `out` with its saved settings (budgets and logging may change). settings: any train flag,
    e.g. ``train("runs/a", max_time="2m", loss="hinge", lr_g=1e-3, betas=(0.5, 0.999))``.
    Bad settings raise FashionGANError with the same one-line message as the CLI."""
    from fashiongan.training.loop import train as train_loop

    if resume:
        if out is None:
            raise FashionGANError("resume=True needs out=RUN_DIR, the run to continue")
        config_path = Path(out) / "config.json"
        if not config_path.is_file():
            raise FashionGANError(f"resume: no config.json in {out} (not a run directory?)")
        if preset:
            raise FashionGANError("preset cannot be combined with resume (the run has its own)")
        cfg = saved_run_config(json.loads(config_path.read_text()), str(config_path))
    elif preset:
        cfg = from_dict({**load_preset(preset), "name": preset}, origin=f"preset {preset}")
    else:
        cfg = RunConfig()
    cfg = _settings(cfg, settings)
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{cfg.name}-{stamp}"
    data_env = os.environ.get("FASHIONGAN_DATA")  # where the CLI looks too
    return train_loop(
        cfg, Path(out), resume=resume, data_env=data_env, override=resume and bool(settings)
    )


def settings_of(run_dir: str | Path) -> dict[str, Any]:
    """A run's saved settings as the flat keyword arguments `train` takes."""
    cfg = saved_run_config(json.loads((Path(run_dir) / "config.json").read_text()), str(run_dir))
    flat = {}
    for section in dataclasses.asdict(cfg).values():
        if isinstance(section, dict):
            flat.update(section)
    return flat


def read_rows(run_dir: str | Path) -> list[dict]:
    """The training rows of a run's metrics.jsonl (one per log tick: step, kimg, losses, D
    outputs, gradient norms, learning rates, img/s)."""
    from fashiongan.fileio import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FashionGANError(f"{run_dir}: no metrics.jsonl (not a run directory?)")
    return [r for r in read_metrics(path) if "loss_d" in r]


def curves(run_dir: str | Path):
    """The run's training curves (losses, D outputs, gradient norms, throughput) as a
    matplotlib Figure, read from its metrics.jsonl: shown inline by a notebook."""
    from fashiongan.reports.plots import training_figure

    records = read_rows(run_dir)
    if not records:
        raise FashionGANError(f"{run_dir}: no training rows in metrics.jsonl yet")
    return training_figure(records)
