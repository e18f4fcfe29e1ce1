"""Validation of a run's settings, before any work is done: each field by its metadata (numbers
by their type and bounds, `choices` and registered names), then the rules between fields,
with each loss's own (`GANLoss.constraints`) and the regularisers'. A name is allowed because it
is registered: the registries are the one statement of what exists. They load torch, so they
are imported when first needed."""

import math

from fashiongan.config import (
    INT_RANGE,
    RunConfig,
    aux_weight,
    flag,
    flat_fields,
    get_path,
    or_list,
)
from fashiongan.errors import FashionGANError


def _expected(meta: dict, is_int: bool) -> tuple[float | None, float | None, str]:
    """A field's bounds (for an integer, int64's when it states none) and how to say them."""
    lo, hi = meta.get("min"), meta.get("max")
    if is_int:
        lo = INT_RANGE[0] if lo is None else lo
        hi = INT_RANGE[1] if hi is None else hi
    if "expect" in meta:
        return lo, hi, meta["expect"]
    if hi is not None and lo is not None:
        return lo, hi, f"{lo}..{hi}"
    return lo, hi, "a non-negative number" if lo == 0 else f"at least {lo}"


def check_numbers(cfg: RunConfig) -> None:
    """One rule for every numeric setting, from the fields' types and metadata: a float is
    finite (NaN and ±inf are refused: `--max-time nan` would train forever, `--lr-g inf` break
    the first step), an integer fits int64, and both respect the field's `min`/`max` and its
    exclusive `gt`/`lt`."""
    for path, f in flat_fields():
        value = get_path(cfg, path)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            shown = " ".join(str(x) for x in values)
            if isinstance(v, float) and not math.isfinite(v):
                raise FashionGANError(f"{flag(path)} {shown}: expected a finite number")
            meta = f.metadata
            lo, hi, expect = _expected(meta, isinstance(v, int))
            gt, lt = meta.get("gt"), meta.get("lt")
            if (
                (lo is not None and v < lo)
                or (hi is not None and v > hi)
                or (gt is not None and v <= gt)
                or (lt is not None and v >= lt)
            ):
                raise FashionGANError(f"{flag(path)} {shown}: expected {expect}")


def registry_of(kind: str):
    """The registry a field's `registry` metadata names (imported on first use: they hold torch
    modules, and the config is read by commands that never load torch)."""
    if kind == "models":
        from fashiongan.models.registry import MODELS as registry
    elif kind == "losses":
        from fashiongan.losses import LOSSES as registry
    elif kind == "regularizers":
        from fashiongan.regularizers import REGULARIZERS as registry
    else:
        raise KeyError(kind)
    return registry


def field_choices(meta) -> list[str] | None:
    """The allowed values of a field: its `choices`, or its registry's names."""
    if "registry" in meta:
        return registry_of(meta["registry"]).names()
    return list(meta["choices"]) if "choices" in meta else None


def check_choices(cfg: RunConfig) -> None:
    """A setting with `choices` (or a registry) takes one of them."""
    for path, f in flat_fields():
        value = get_path(cfg, path)
        if value is None or isinstance(value, tuple):  # --reg: NAME=STRENGTH pairs, checked apart
            continue
        allowed = field_choices(f.metadata)
        if allowed is not None and value not in allowed:
            if "registry" in f.metadata:
                registry_of(f.metadata["registry"]).get(value)  # its own message
            raise FashionGANError(f"{flag(path)} {value!r}: choose {or_list(allowed)}")


def _regularizer_rules(cfg: RunConfig) -> list[tuple[bool, str]]:
    from fashiongan.regularizers import REGULARIZERS, parse_reg

    try:
        given = parse_reg(cfg.loss.reg)
    except ValueError as e:
        return [(False, str(e))]
    rules = []
    for name, strength in given:
        reg = REGULARIZERS.get(name)
        rules.append((not reg.flag, f"--reg {name}: set it with {reg.flag} instead"))
        rules.append(
            (
                math.isfinite(strength) and strength >= 0,
                f"--reg {name}={strength}: expected a finite, non-negative strength",
            )
        )
    return rules


def validate(cfg: RunConfig) -> None:
    """Reject impossible or meaningless settings before any work is done: each field by its
    metadata (numbers, choices, registered names), then the rules between fields, with each
    loss's own (`GANLoss.constraints`)."""
    check_numbers(cfg)
    check_choices(cfg)
    from fashiongan.losses import LOSSES

    m, t = cfg.model, cfg.train
    rules = [
        (
            m.mbstd == 0 or m.mbstd >= 2,
            f"--mbstd {m.mbstd}: expected a group size of 2 or more (a group of one has no "
            f"spread), or 0 (off)",
        ),
        (round(64 * m.width) >= 1, f"--width {m.width}: must be positive"),
        (
            m.d_width == 0 or (m.d_width > 0 and round(64 * m.d_width) >= 1),
            f"--d-width {m.d_width}: must be positive, or 0 (the same as --width)",
        ),
        (
            aux_weight(cfg) == 0 or m.cond != "none",
            "--aux-weight needs class labels to learn: use --cond concat or projection",
        ),
        (
            any((t.epochs, t.steps, t.kimg, t.max_time)),
            "no budget: give --epochs, --steps, --kimg or --max-time",
        ),
        (
            cfg.log.inception_weights is None or cfg.log.eval_features == "inception",
            "--inception-weights is for --eval-features inception; add that or drop it",
        ),
        (
            cfg.log.eval_features == "evaluator" or cfg.log.eval_every,
            "--eval-features inception scores during training: add --eval-every N",
        ),
        *LOSSES.get(cfg.loss.loss).constraints(cfg),
        *_regularizer_rules(cfg),
    ]
    for ok, message in rules:
        if not ok:
            raise FashionGANError(message)
