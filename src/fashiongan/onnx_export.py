"""A generator as an ONNX graph (`fashiongan export --format onnx`, the onnx extra), for ONNX
Runtime and every runtime that reads ONNX.

Inputs: `z` float32 N×z_dim (standard normal) and, for a conditional model, `labels` int64 N
(class ids); N is dynamic. Outputs: `images` float32 N×C×H×W in [-1, 1] (the tanh output) and
`pixels` uint8 N×C×H×W (rounded as `generate` rounds). The model's metadata_props hold
class_names (JSON), z_dim, resolution, channels, step and the run's config (JSON).

The export is checked with ONNX Runtime when it is installed: the same latents through both
must agree within TOLERANCE on `images`, and `pixels` within one grey level, or the file is not
written.
"""

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from fashiongan._version import __version__
from fashiongan.data.datasets import to_uint8
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_write_bytes

TOLERANCE = 1e-4  # max |ONNX Runtime − PyTorch| on images in [-1, 1]; measured: ~3e-7
CHECK_SAMPLES = 64


class _Graph(torch.nn.Module):
    """G with the uint8 rounding of `generate` appended; labels only when conditional."""

    def __init__(self, G: torch.nn.Module, conditional: bool):
        super().__init__()
        self.G, self.conditional = G, conditional

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None):
        x = self.G(z, labels if self.conditional else None)
        return x, to_uint8(x).view(x.shape)  # generate's rounding; N×C×H×W for gray too


def _inputs(gen, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    from fashiongan.sampling import latents

    z = latents(seed, n, gen.z_dim)
    labels = torch.arange(n, dtype=torch.int64) % gen.n_classes
    return {"z": z, "labels": labels} if gen.conditional else {"z": z}


def _export_bytes(gen) -> bytes:
    try:
        import onnx  # noqa: F401 - the exporter needs both
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise FashionGANError(
            f"--format onnx needs the onnx extra ({e.name} is missing): "
            "pip install 'fashiongan[onnx]'"
        ) from None
    G = gen.G.cpu().to(memory_format=torch.contiguous_format).eval()
    graph = _Graph(G, gen.conditional).eval()
    example = _inputs(gen, 2)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    shapes = {k: {0: batch} for k in example}
    quiet = logging.getLogger("torch.onnx")  # its registry notes torchvision's absence
    level = quiet.level
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on axis names and opsets
        quiet.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                graph, tuple(example.values()), dynamo=True, input_names=list(example),
                output_names=["images", "pixels"], dynamic_shapes=shapes, optimize=True,
                verbose=False,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - the exporter's failures are many; say it once
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise FashionGANError(f"ONNX export failed: {first}") from None
        finally:
            quiet.setLevel(level)
        path = Path(tmp) / "g.onnx"
        program.save(str(path))
        return path.read_bytes()


def _with_metadata(data: bytes, gen) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    meta = {
        "format": "fashiongan-generator-onnx",
        "fashiongan": __version__,
        "class_names": json.dumps(list(gen.class_names)),
        "z_dim": str(gen.z_dim),
        "resolution": str(gen.resolution),
        "channels": str(gen.G.channels),
        "conditional": "true" if gen.conditional else "false",
        "step": str(gen.step),
        "config": json.dumps(gen.config),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def check_onnx(data: bytes, gen, n: int = CHECK_SAMPLES) -> dict | None:
    """Run n samples through ONNX Runtime and PyTorch: {max_abs_diff, pixels_off_by_one,
    pixels_max_diff}; None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = _inputs(gen, n, seed=1)
    images, pixels = session.run(None, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        ref, ref_pixels = _Graph(gen.G.cpu().eval(), gen.conditional)(*feeds.values())
    pixel_diff = (torch.from_numpy(pixels).int() - ref_pixels.int()).abs()
    return {
        "max_abs_diff": float((torch.from_numpy(images) - ref).abs().max()),
        "pixels_off_by_one": float((pixel_diff > 0).float().mean()),
        "pixels_max_diff": int(pixel_diff.max()),
        "samples": n,
    }


def export_onnx(gen, out: str | os.PathLike) -> dict | None:
    """Write `gen` (a LoadedGenerator) to `out` (.onnx) after checking it with ONNX Runtime
    (when installed). Returns the check's numbers (None: not checked)."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise FashionGANError(f"--out {out}: expected a file name ending in .onnx")
    data = _with_metadata(_export_bytes(gen), gen)
    check = check_onnx(data, gen)
    if check is not None and (check["max_abs_diff"] > TOLERANCE or check["pixels_max_diff"] > 1):
        raise FashionGANError(
            f"ONNX Runtime and PyTorch disagree on this generator (max |Δ| "
            f"{check['max_abs_diff']:.2g} > {TOLERANCE}); not written"
        )
    atomic_write_bytes(out, data)
    return check
