"""What produced an evaluation: evaluator, metrics, the two sets, settings, versions, time —
metrics.json's `provenance`."""

import datetime
import time

import torch

from fashiongan._version import __version__
from fashiongan.metrics.defaults import (
    FLOOR_SEED,
    IS_SPLITS,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    PRDC_K,
)


def _floor_text(ctx, reference: str, n: int) -> str:
    if reference == "against":
        return "none: two given sets are compared, not a set with real images"
    other = "train" if reference == "test" else "test"
    text = (
        f"{n} class-balanced real images of the {other} split (seed {FLOOR_SEED}) vs the "
        f"reference; label accuracy and memorization on real test images; cas: the same recipe "
        f"trained on real images"
    )
    if ctx.reference_stats is not None:
        text += "; shipped with the evaluator's reference statistics"
    return text


def provenance(ctx, names, reference: str, memorization_samples: int, start: float) -> dict:
    """ctx: the suite's Context; reference: the split, or "against" for a given set."""
    sample, evaluator, stats = ctx.sample, ctx.evaluator, ctx.reference_stats
    own = "data" in evaluator.info
    return {
        "evaluator": evaluator.id,
        "evaluator_test_accuracy": evaluator.info.get("test_accuracy"),
        "metrics": names,
        "source": sample.description,
        "n_fake": len(sample),
        "n_real": stats.n if stats is not None else len(ctx.reference),
        "split": reference,
        "reference_checksum": stats.checksum if stats is not None else ctx.reference.checksum,
        # a given set, shipped statistics, or a user's data set: say which reference it was
        **(
            {"reference": ctx.reference.description}
            if own or stats is not None or reference == "against"
            else {}
        ),
        **({"evaluator_data": evaluator.info["data"]} if own else {}),
        "floor": _floor_text(ctx, reference, len(sample)),
        "labels": "given" if sample.labels is not None else "none",
        "seed": ctx.seed,
        "prdc_k": PRDC_K,
        "kid_subsets": [KID_SUBSETS, KID_SUBSET_SIZE],
        "is_splits": IS_SPLITS,
        "memorization_samples": min(len(sample), memorization_samples),
        "notes": ctx.notes,
        "version": __version__,
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - start, 2),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
