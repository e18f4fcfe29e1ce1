"""`fashiongan evaluator stats`: write an evaluator's reference statistics of the real splits
(feature mean and covariance, float64) and the real-vs-real floors of the metrics they serve, so
that `evaluate` gives FID, IS, label accuracy and the class histogram where the data set is not
installed. The shipped evaluator carries the file for Fashion-MNIST's train and test splits."""

import json
from collections.abc import Callable
from pathlib import Path

import torch

from fashiongan.data.datasets import default_cache_dir
from fashiongan.fileio import atomic_write_bytes
from fashiongan.metrics.defaults import NUM_SAMPLES
from fashiongan.metrics.evaluator import Evaluator
from fashiongan.metrics.fid import gaussian_stats
from fashiongan.metrics.reference import OFFLINE_METRICS, STATS_FILE, STATS_FORMAT
from fashiongan.metrics.suite import Context, floors, make_real_loader


def write_reference_stats(
    evaluator: Evaluator,
    cache_dir: Path | None,
    data: str | None = None,
    env_dir: str | None = None,
    sizes: tuple[int, ...] = (NUM_SAMPLES,),
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Write STATS_FILE into `out` (default: the evaluator's directory); floors for judged sets
    of each of `sizes` images."""
    from safetensors.torch import save

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    real = make_real_loader(evaluator, cache_dir, data, env_dir)
    tensors: dict[str, torch.Tensor] = {}
    meta = {"format": STATS_FORMAT, "evaluator": evaluator.id, "evaluator_sha256": evaluator.sha256}
    for split in ("train", "test"):
        ref = real(split)
        mu, sigma = gaussian_stats(ref.features)
        tensors[f"{split}.mu"], tensors[f"{split}.sigma"] = map(torch.from_numpy, (mu, sigma))
        ctx = Context(ref, ref, split, evaluator, real, cache_dir, log=log)
        by_size = {str(n): floors(list(OFFLINE_METRICS), ctx, n) for n in sizes}
        meta.update({
            f"{split}.n": str(len(ref)), f"{split}.checksum": ref.checksum,
            f"{split}.source": ref.description, f"{split}.floors": json.dumps(by_size),
        })  # fmt: skip
        log(f"{split}: {len(ref)} images, floors at n = {', '.join(map(str, sizes))}")
    path = Path(out or evaluator.directory) / STATS_FILE
    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}, meta))
    return path
