"""`evaluate --features inception`: FID, KID, IS and precision/recall of the judged set in
Inception-v3 space, beside the evaluator's numbers (never instead), with the real-vs-real floor
at the same n in that space too. Keys: inception_fid, inception_kid(_std), inception_is(_std),
inception_precision, inception_recall."""

from collections.abc import Callable
from pathlib import Path

import torch

from fashiongan.metrics.defaults import IS_SPLITS, KID_SUBSET_SIZE, KID_SUBSETS, PRDC_K
from fashiongan.metrics.fid import fid
from fashiongan.metrics.inception import InceptionFeatures
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.kid import kid
from fashiongan.metrics.precision_recall import prdc
from fashiongan.metrics.reference import FeatureSet


def _scores(fake, fake_logits, real, seed: int) -> dict:
    size = min(KID_SUBSET_SIZE, len(fake), len(real))
    mean, std = kid(fake, real, KID_SUBSETS, size, seed)
    out = {"inception_fid": fid(fake, real), "inception_kid": mean, "inception_kid_std": std}
    if len(fake) >= IS_SPLITS:
        out["inception_is"], out["inception_is_std"] = inception_score(fake_logits, IS_SPLITS, seed)
    if len(fake) > PRDC_K and len(real) > PRDC_K:
        pr = prdc(real, fake, PRDC_K)
        out.update(inception_precision=pr["precision"], inception_recall=pr["recall"])
    return out


def add_inception(
    results: dict,
    sample: FeatureSet,
    reference: FeatureSet,
    floor: FeatureSet | None,
    weights: tuple[Path, str],
    cache_dir: Path,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
) -> None:
    """Score `sample` against `reference` (a real split, cached; or a given set) in Inception
    space and put the values, the floors (`floor` against the reference) and the network's
    provenance into `results`. weights: (path, SHA-256) from inception.weights_file."""
    net = InceptionFeatures(*weights, device)
    log(f"Inception features of {len(sample)} judged images ({net.id}; minutes on a CPU)")
    fake, fake_logits = net.features(sample.images)
    real = net.of_reference(reference, cache_dir)
    results.update(_scores(fake, fake_logits, real, seed))
    if floor is not None:
        key = f"floor-{floor.checksum[:16] or 'x'}-{reference.checksum[:16]}-{len(floor)}"
        floor_f, floor_logits = net.cached(floor.images, key, cache_dir)
        results.setdefault("floors", {}).update(_scores(floor_f, floor_logits, real, seed))
    results["provenance"]["inception"] = net.provenance
