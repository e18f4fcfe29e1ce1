"""Run in the torch-fidelity venv by tests/test_inception.py: our Inception path against
torch-fidelity's own code on one weights file (random, variance-preserving: the standard file
cannot be fetched here). Prints one JSON line of both sides' numbers.

usage: python inception_check.py A_DIR B_DIR TINY_DATA WORK_DIR
"""

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch_fidelity
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

import fashiongan.metrics.inception as inception
from fashiongan.metrics.evaluate import evaluate
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.kid import kid
from fashiongan.metrics.sources import read_image_set


def random_weights(path: Path) -> str:
    """torch-fidelity's Inception-v3 with random weights, saved in its file format."""
    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    cls = tf_inception.FeatureExtractorInceptionV3
    load = cls.load_state_dict
    cls.load_state_dict = lambda self, state, strict=True: None  # build the layers only
    try:
        torch.manual_seed(0)
        net = cls("x", ["2048"], feature_extractor_weights_path=str(empty))
    finally:
        cls.load_state_dict = load
    for m in net.modules():  # variance-preserving, so deep random features still vary
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.nn.init.normal_(net.fc.weight, std=0.05)
    torch.save(net.state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(a: str, b: str, data: str, work: str) -> None:
    work_dir = Path(work)
    weights = work_dir / "weights.pth"
    digest = random_weights(weights)
    inception.HASH_PREFIX = digest[:8]  # the test's file stands in for the standard one
    quiet = {"write": False, "cache_dir": work_dir / "cache", "log": lambda s: None}
    ours = evaluate(a, against=b, metrics=["fid"], inception=True, inception_weights=weights,
                    **quiet).results  # fmt: skip
    n = len(read_image_set(a).images)
    theirs = torch_fidelity.calculate_metrics(
        input1=a, input2=b, fid=True, kid=True, isc=True, isc_splits=1, kid_subsets=1,
        kid_subset_size=n, feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(weights), cuda=False, verbose=False,
    )  # fmt: skip
    net = inception.InceptionFeatures(weights, digest)
    fa, la = net.features(read_image_set(a).images)
    fb, _ = net.features(read_image_set(b).images)
    # against a real split (a tiny IDX set): the floors come in Inception space too
    real = evaluate(a, metrics=["fid"], inception=True, inception_weights=weights, data=data,
                    force_evaluator=True, **quiet).results  # fmt: skip
    again = evaluate(a, metrics=["fid"], inception=True, inception_weights=weights, data=data,
                     force_evaluator=True, **quiet).results  # fmt: skip
    # no data set installed: refused before any work (Inception has no shipped statistics)
    import fashiongan.data.datasets as datasets
    from fashiongan.errors import FashionGANError

    system, datasets.SYSTEM_DIR = datasets.SYSTEM_DIR, work_dir / "nowhere"
    try:
        evaluate(a, metrics=["fid"], inception=True, inception_weights=weights, **quiet)
        offline = "no error"
    except FashionGANError as e:
        offline = str(e)
    datasets.SYSTEM_DIR = system
    # --eval-every with --eval-features inception: inception_fid in metrics.jsonl
    from fashiongan.cli import main as cli
    from fashiongan.fileio import read_metrics

    run = work_dir / "run"
    status = cli([
        "train", "--data", data, "--steps", "2", "--eval-every", "2", "--eval-samples", "100",
        "--eval-features", "inception", "--inception-weights", str(weights), "--width", "0.25",
        "--batch-size", "16", "--out", str(run), "--no-progress",
    ])  # fmt: skip
    rows = [r for r in read_metrics(run / "metrics.jsonl") if "fid" in r] if status == 0 else []
    out = {
        "offline": offline,
        "train_status": status,
        "train_rows": rows,
        "ours": {k: v for k, v in ours.items() if k.startswith("inception")},
        "theirs": theirs,
        "kid_one_subset": kid(fa, fb, 1, n)[0],
        "is_one_split": inception_score(la, 1)[0],
        "provenance": ours["provenance"]["inception"],
        "real": {k: v for k, v in real.items() if k.startswith("inception")},
        "real_floors": real["floors"],
        "again": {k: v for k, v in again.items() if k.startswith("inception")},
        "cached": sorted(p.name for p in (work_dir / "cache" / "eval").glob("inception-*/*")),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:5])
