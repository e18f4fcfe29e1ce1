"""Checkpoints: plain dicts of tensors and numbers, saved atomically, loaded with
torch.load(weights_only=True) only, so a stranger's file cannot run code.

Keys: version, config (nested dict), step, nimg, G, D, G_ema, opt_G, opt_D, batcher, rng
(train noise generator and torch's global state), class_names, resolution.
"""

import io
import os
import pickle
import re
from pathlib import Path

import torch

from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_save

CHECKPOINT_RE = re.compile(r"ckpt-(\d+)\.pt$")
REQUIRED_KEYS = ("version", "config", "step", "G")
# keys older versions did not write, with the value those versions behaved as
BEFORE = {
    "G_ema": None,
    "data_checksum": None,
    "best_fid": None,
    "lr_scale": 1.0,
    "rollbacks": 0,
    "skipped": 0,
    "noise_nimg": 0,
}


def upgrade(state: dict) -> dict:
    """A checkpoint (or exported generator) in this version's shape: what an older version did
    not write gets the value it behaved as. The one place for that; their settings are upgraded
    by config.saved_run_config, which every reader of `config` goes through."""
    return {**BEFORE, **state}


def serialize(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def deserialize(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def save_checkpoint(paths: list[Path], state: dict) -> bytes:
    """Serialise `state` once, fully, before touching the disk; then write it atomically to
    each path in order. Returns the bytes written."""
    data = serialize(state)
    for path in paths:
        atomic_save(path, lambda f: f.write(data))
    return data


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load and sanity-check a checkpoint; any failure is a one-line FashionGANError."""
    path = Path(path)
    if not path.is_file():
        raise FashionGANError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FashionGANError(
            f"{path}: refused to load: the file holds objects other than tensors and plain "
            f"data, which could run code ({first[:160]})"
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure to parse a foreign file is bad input
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FashionGANError(f"{path}: not a readable checkpoint ({msg[:200]})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        keys = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise FashionGANError(
            f"{path}: not a fashiongan checkpoint (expected keys {REQUIRED_KEYS}, found {keys})"
        )
    return upgrade(state)


def numbered_checkpoints(directory: Path) -> list[Path]:
    """ckpt-NNNNNNN.pt files, oldest step first."""
    found = [
        (int(m.group(1)), p)
        for p in directory.glob("ckpt-*.pt")
        if (m := CHECKPOINT_RE.search(p.name))
    ]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | os.PathLike, prefer: str = "final") -> Path:
    """A checkpoint file, or a run directory → its final.pt (or latest.pt if unfinished, or the
    newest numbered one)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FashionGANError(f"{path}: no such run directory or checkpoint file")
    directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    order = ["final.pt", "latest.pt"] if prefer == "final" else ["latest.pt", "final.pt"]
    # One save writes ckpt-N.pt, then latest.pt, then final.pt: a kill between two of them, or
    # a resumed run that has not finished again, leaves the newest state in the file written
    # last, which is the one --resume continues from.
    found = [directory / n for n in order if (directory / n).is_file()]
    found += numbered_checkpoints(directory)[-1:]
    if found:
        return max(found, key=lambda p: (p.stat().st_mtime_ns, -found.index(p)))
    raise FashionGANError(f"{path}: holds no checkpoint (looked for {', '.join(order)}, ckpt-*.pt)")


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` numbered checkpoints (latest/final are untouched)."""
    if keep <= 0:
        return
    for old in numbered_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)


def _shape(t) -> str:
    return "×".join(map(str, t.shape)) if hasattr(t, "shape") and t.dim() else "scalar"


def _listing(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def fit_report(module: torch.nn.Module, weights: dict) -> str:
    """'' when `weights` fit `module` key for key and shape for shape; else what differs:
    'shapes differ: fc.weight expected 3136×100, found 6272×100; missing: ...; unexpected: ...'."""
    expected = module.state_dict()
    if not isinstance(weights, dict):
        return f"expected a dict of tensors, found {type(weights).__name__}"
    shapes = [
        f"{k} expected {_shape(v)}, found {_shape(weights[k])}"
        for k, v in expected.items()
        if k in weights and (not hasattr(weights[k], "shape") or weights[k].shape != v.shape)
    ]
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    parts = [
        f"{label}: {_listing(items)}"
        for label, items in (
            ("shapes differ", shapes),
            ("missing", missing),
            ("unexpected", unexpected),
        )
        if items
    ]
    return "; ".join(parts)


def load_weights(module: torch.nn.Module, weights: dict, where: str, what: str) -> None:
    """module.load_state_dict(weights), or a one-line error naming the keys and shapes that
    differ ('{where}: weights do not fit {what}: ...')."""
    report = fit_report(module, weights)
    if report:
        raise FashionGANError(f"{where}: weights do not fit {what}: {report}")
    module.load_state_dict(weights)
