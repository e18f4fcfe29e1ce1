"""Generator-only weights as a .safetensors file: tensors plus string metadata, nothing that
can run code when loaded, readable from any language with a safetensors library.

Metadata keys: format ("fashiongan-generator"), version, config (the run's settings as JSON),
class_names (JSON list), step, ema ("true" when the weights are G_ema's).
"""

import json
import os
from pathlib import Path

from fashiongan._version import __version__
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_write_bytes

FORMAT = "fashiongan-generator"
SUFFIX = ".safetensors"


def export_generator(state: dict, out: str | os.PathLike, ema: bool = True) -> bool:
    """Write G's (or G_ema's) weights from a loaded checkpoint `state` to `out`, atomically.
    Returns whether the EMA weights were written."""
    from safetensors.torch import save

    out = Path(out)
    if out.suffix != SUFFIX:
        raise FashionGANError(f"--out {out}: expected a file name ending in {SUFFIX}")
    use_ema = ema and state.get("G_ema") is not None
    weights = state["G_ema"] if use_ema else state["G"]
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    metadata = {
        "format": FORMAT,
        "version": __version__,
        "config": json.dumps(state["config"]),
        "class_names": json.dumps(list(state["class_names"])),
        "step": str(int(state["step"])),
        "ema": "true" if use_ema else "false",
        **({"channels": str(state["channels"])} if "channels" in state else {}),  # absent: gray
    }
    atomic_write_bytes(out, save(tensors, metadata))
    return use_ema


def read_generator(path: str | os.PathLike) -> dict:
    """A .safetensors generator file → a dict shaped like a checkpoint (config, class_names,
    step, version, G; G_ema None), or a one-line FashionGANError."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except OSError as e:
        raise FashionGANError(f"{path}: {e.strerror or e}") from None
    except (SafetensorError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FashionGANError(f"{path}: not a readable safetensors file ({first[:160]})") from None
    if metadata.get("format") != FORMAT:
        raise FashionGANError(
            f"{path}: a safetensors file without fashiongan's metadata (format "
            f"{metadata.get('format')!r}); expected one written by `fashiongan export`"
        )
    try:
        return {
            "version": metadata["version"],
            "config": json.loads(metadata["config"]),
            "class_names": json.loads(metadata["class_names"]),
            "step": int(metadata["step"]),
            "G": tensors,
            "G_ema": None,
            **({"channels": int(metadata["channels"])} if "channels" in metadata else {}),
        }
    except (KeyError, ValueError) as e:
        raise FashionGANError(f"{path}: fashiongan metadata is incomplete ({e})") from None


def is_portable(path: Path) -> bool:
    return path.suffix == SUFFIX and path.is_file()
