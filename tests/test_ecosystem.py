"""The evaluator inside torchmetrics and torch-fidelity, `evaluate --against`, FID without the
data set (shipped reference statistics), flat PNG folders, the evaluator in safetensors."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fashiongan.data.datasets import FASHION_CLASSES, load_dataset
from fashiongan.dataset_export import export
from fashiongan.errors import FashionGANError
from fashiongan.metrics.evaluate import evaluate
from fashiongan.metrics.evaluator import load_evaluator
from fashiongan.metrics.extractor import FeatureExtractor, to_uint8
from fashiongan.metrics.fid import fid
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.kid import kid
from test_evaluate import tiny_evaluator  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
QUIET = {"log": lambda s: None}


def fidelity_python() -> str:
    """The venv install.sh --test makes for torch-fidelity (it needs torchvision, which does not
    import beside torch's CPU build). Missing → the test fails with the fix, never skips."""
    python = os.environ.get("FASHIONGAN_FIDELITY_PYTHON", str(REPO / ".venv-fidelity/bin/python"))
    if not Path(python).is_file():
        pytest.fail(f"no torch-fidelity venv at {python}: run `bash install.sh --test`")
    return python


@pytest.fixture(scope="module")
def real_sets(real_data):
    test = load_dataset(str(real_data), "test")
    train = load_dataset(str(real_data), "train")
    return test.images[:1500], test.labels[:1500], train.images[:1500], train.labels[:1500]


@pytest.fixture(scope="module")
def evaluator():
    return load_evaluator()


def test_torchmetrics_fid_kid_is_on_our_features_equal_ours(real_sets, evaluator):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    a, _, b, _ = real_sets
    fa, la = evaluator.features(a)
    fb, _ = evaluator.features(b)
    fid_m = FrechetInceptionDistance(feature=FeatureExtractor(evaluator))
    kid_m = KernelInceptionDistance(feature=FeatureExtractor(evaluator), subsets=1,
                                    subset_size=len(a))  # fmt: skip
    is_m = InceptionScore(feature=FeatureExtractor(evaluator, "logits"), splits=1)
    for chunk in a.split(500):  # uint8 N×3×H×W, torchmetrics' default convention
        rgb = chunk[:, None].expand(-1, 3, -1, -1)
        fid_m.update(rgb, real=True)
        kid_m.update(rgb, real=True)
        is_m.update(rgb)
    for chunk in b.split(500):  # floats in [0, 1], one channel
        fid_m.update(chunk[:, None].float() / 255, real=False)
        kid_m.update(chunk[:, None].float() / 255, real=False)
    assert float(fid_m.compute()) == pytest.approx(fid(fb, fa), rel=1e-5)
    # one subset of every image: a permutation of each set, so the unbiased MMD² is the same,
    # up to torchmetrics' float32 kernel (1e-6 is 0.001 in KID ×1000, as we print it)
    theirs_kid, _ = kid_m.compute()
    assert float(theirs_kid) == pytest.approx(kid(fb, fa, 1, len(a))[0], abs=1e-6)
    theirs_is, _ = is_m.compute()
    assert float(theirs_is) == pytest.approx(inception_score(la, splits=1)[0], rel=1e-5)
    assert fid(fb, fa) > 0.1  # two different real sets: not a degenerate zero


def test_extractor_input_conventions_give_one_answer(real_sets, evaluator):
    a = real_sets[0][:200]
    ex = FeatureExtractor(evaluator)
    ours, _ = evaluator.features(a)
    for variant in (
        a,  # N×H×W
        a[:, None],  # uint8 N×1×H×W
        a[:, None].expand(-1, 3, -1, -1),  # RGB of a gray image: luminance is the gray value
        a[:, None].float() / 255,  # floats in [0, 1]
        a[:, None].double() / 255,
    ):
        assert torch.equal(ex(variant), ours)
    assert ex.num_features == ours.shape[1] == 256
    assert FeatureExtractor(evaluator, "logits")(a).shape == (200, 10)
    up = torch.nn.functional.interpolate(a[:, None].float(), size=64, mode="nearest")
    assert ex(up.to(torch.uint8)).shape == (200, 256)  # any side, resized as evaluate resizes
    ex.train()
    assert not ex.net.training  # torchmetrics' .train() must not wake BatchNorm or dropout
    with pytest.raises(FashionGANError, match="N×C×H×W"):
        to_uint8(torch.zeros(2, 5, 8, 8, dtype=torch.uint8), 1)
    with pytest.raises(FashionGANError, match="dtype"):
        to_uint8(torch.zeros(2, 1, 8, 8, dtype=torch.int32), 1)
    with pytest.raises(FashionGANError, match="output"):
        FeatureExtractor(evaluator, "pool3")


def _flat_folder(path: Path, images, labels) -> Path:
    export(path, images.numpy(), labels.numpy(), "pngs", FASHION_CLASSES, layout="flat")
    return path


def test_flat_png_layout_reads_back_labelled(real_sets, tmp_path):
    a, la, _, _ = real_sets
    out = _flat_folder(tmp_path / "flat", a[:40], la[:40])
    names = sorted(p.name for p in out.iterdir())
    assert names[:2] == ["000000.png", "000001.png"] and "labels.csv" in names
    assert not [p for p in out.iterdir() if p.is_dir()]  # flat: what pytorch-fid globs
    from fashiongan.metrics.sources import read_image_set

    back = read_image_set(str(out))
    order = np.lexsort(back.images.reshape(40, -1).numpy().T[::-1])
    mine = np.lexsort(a[:40].reshape(40, -1).numpy().T[::-1])
    assert torch.equal(back.images[order], a[:40][mine])
    assert torch.equal(back.labels[order], la[:40][mine])


def test_torch_fidelity_on_our_extractor_equals_ours(real_sets, tmp_path):
    """torch-fidelity's own code path (its folder reader, its FID/KID/ISC) with our extractor
    registered, on two flat PNG folders, against `evaluate A --against B`."""
    a, la, b, lb = real_sets
    fa, fb = _flat_folder(tmp_path / "a", a, la), _flat_folder(tmp_path / "b", b, lb)
    script = (
        "import json, sys, torch_fidelity\n"
        "from fashiongan.metrics.extractor import register_torch_fidelity\n"
        "m = torch_fidelity.calculate_metrics(input1=sys.argv[1], input2=sys.argv[2], fid=True,"
        " kid=True, isc=True, isc_splits=1, kid_subsets=1, kid_subset_size=int(sys.argv[3]),"
        " feature_extractor=register_torch_fidelity(), cuda=False, verbose=False)\n"
        "print(json.dumps(m))\n"
    )
    run = subprocess.run(
        [fidelity_python(), "-c", script, str(fa), str(fb), str(len(a))],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    ours = evaluate(fa, against=fb, metrics=["fid"], write=False, **QUIET).metrics
    assert theirs["frechet_inception_distance"] == pytest.approx(ours["fid"], rel=1e-5)
    features_a, logits = load_evaluator().features(a)
    features_b, _ = load_evaluator().features(b)
    one_subset = kid(features_a, features_b, 1, len(a))[0]  # every image: order-free
    # torch-fidelity's kernel runs in float32: 2e-6 is 0.002 in KID ×1000, as we print it
    assert theirs["kernel_inception_distance_mean"] == pytest.approx(one_subset, abs=2e-6)
    assert theirs["inception_score_mean"] == pytest.approx(inception_score(logits, 1)[0], 1e-5)


def test_against_is_symmetric_zero_on_itself_and_order_free(real_sets, tmp_path):
    a, la, b, lb = real_sets
    np.savez(tmp_path / "a.npz", images=a.numpy(), labels=la.numpy())
    np.savez(tmp_path / "b.npz", images=b.numpy(), labels=lb.numpy())
    flip = torch.arange(len(a) - 1, -1, -1)
    np.savez(tmp_path / "a_rev.npz", images=a[flip].numpy(), labels=la[flip].numpy())

    def score(x, y, names=("fid", "prdc", "swd")):
        r = evaluate(tmp_path / x, against=tmp_path / y, metrics=list(names), write=False,
                     **QUIET)  # fmt: skip
        return r.metrics

    ab, ba, aa = score("a.npz", "b.npz"), score("b.npz", "a.npz"), score("a.npz", "a_rev.npz")
    assert ab["fid"] == pytest.approx(ba["fid"], rel=1e-9) and ab["fid"] > 0.5
    assert abs(aa["fid"]) < 1e-6 and aa["precision"] == aa["recall"] == 1.0
    assert aa["swd"] < 1e-6
    # corrupting the judged set moves it away from the reference, monotonically
    rng = torch.Generator().manual_seed(0)
    fids = []
    for sigma in (0, 20, 60):
        noisy = (a.float() + sigma * torch.randn(a.shape, generator=rng)).clamp(0, 255)
        np.savez(tmp_path / "n.npz", images=noisy.round().to(torch.uint8).numpy())
        fids.append(score("n.npz", "a.npz", ["fid"])["fid"])
    assert fids[0] < 1e-6 < fids[1] < fids[2]


def test_against_refuses_what_needs_the_real_splits(real_sets, tmp_path, capsys):
    from fashiongan.cli import main

    a, la, _, _ = real_sets
    np.savez(tmp_path / "a.npz", images=a[:100].numpy(), labels=la[:100].numpy())
    np.savez(tmp_path / "u.npz", images=a[100:200].numpy())  # unlabelled
    argv = ["evaluate", str(tmp_path / "a.npz"), "--against", str(tmp_path / "a.npz")]
    assert main(argv + ["--metrics", "memorization"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--against" in err and "memorization" in err
    argv = ["evaluate", str(tmp_path / "a.npz"), "--against", str(tmp_path / "u.npz")]
    assert main(argv + ["--metrics", "class_fid"]) == 2
    assert "labels on the --against set" in capsys.readouterr().err
    assert main(argv + ["--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert f"vs {tmp_path / 'u.npz'}" in out and "FID" in out
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "floor: none" in report and "real against split" not in report
    assert main(["evaluate", str(tmp_path / "a.npz"), "--against", str(tmp_path / "no")]) == 2


def test_fid_without_the_data_set_from_shipped_statistics(real_sets, tmp_path, monkeypatch):
    a, la, _, _ = real_sets
    np.savez(tmp_path / "a.npz", images=a.numpy(), labels=la.numpy())
    names = ["fid", "is", "label_accuracy", "class_histogram"]
    online = evaluate(tmp_path / "a.npz", names, write=False, **QUIET)  # the usual cache
    monkeypatch.setattr("fashiongan.data.datasets.SYSTEM_DIR", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    offline = evaluate(tmp_path / "a.npz", write=False, cache_dir=tmp_path / "c2", **QUIET)
    assert offline.metrics["fid"] == pytest.approx(online.metrics["fid"], rel=1e-9)
    assert offline.metrics["is"] == online.metrics["is"]
    assert set(offline.provenance["metrics"]) == {"fid", "is", "label_accuracy",
                                                   "class_histogram"}  # fmt: skip
    assert offline.provenance["n_real"] == 10000
    assert any("kid" in n and "fashiongan download" in n for n in offline.provenance["notes"])
    with pytest.raises(FashionGANError, match="shipped statistics.*fashiongan download"):
        evaluate(tmp_path / "a.npz", metrics=["kid"], write=False, cache_dir=tmp_path / "c2",
                 **QUIET)  # fmt: skip


def test_shipped_statistics_floors_match_computed_ones(real_data, tmp_path, monkeypatch):
    test = load_dataset(str(real_data), "test")
    np.savez(tmp_path / "t.npz", images=test.images.numpy(), labels=test.labels.numpy())
    online = evaluate(tmp_path / "t.npz", metrics=["fid", "is"], write=False, **QUIET)
    monkeypatch.setattr("fashiongan.data.datasets.SYSTEM_DIR", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    offline = evaluate(tmp_path / "t.npz", metrics=["fid", "is"], write=False,
                       cache_dir=tmp_path / "c2", **QUIET)  # fmt: skip
    assert abs(offline.metrics["fid"]) < 1e-6  # the test split against its own statistics
    assert offline.floors["fid"] == pytest.approx(online.floors["fid"], rel=1e-9)
    assert offline.floors["is"] == pytest.approx(online.floors["is"], rel=1e-12)


def test_reference_statistics_of_other_weights_are_refused(tmp_path, evaluator):
    import shutil

    from fashiongan.metrics.evaluator import WEIGHTS_DIR
    from fashiongan.metrics.reference import shipped_stats

    for name in os.listdir(WEIGHTS_DIR):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    info = json.loads((tmp_path / "evaluator.json").read_text())
    info["sha256"] = "0" * 64
    (tmp_path / "evaluator.json").write_text(json.dumps(info))
    other = load_evaluator(tmp_path, verify=False)
    with pytest.raises(FashionGANError, match="written for evaluator weights"):
        shipped_stats(other, "test")
    assert shipped_stats(evaluator, "test").n == 10000


def test_evaluator_is_safetensors_and_old_pt_still_loads(tmp_path, evaluator, real_sets):
    from fashiongan.fileio import sha256_file
    from fashiongan.metrics.evaluator import WEIGHTS_DIR, save_evaluator

    info = json.loads((WEIGHTS_DIR / "evaluator.json").read_text())
    assert info["file"] == "evaluator.safetensors"
    assert sha256_file(WEIGHTS_DIR / info["file"]) == info["sha256"]
    # an older evaluator.pt (torch.save of the state dict) loads with weights_only
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in evaluator.net.state_dict().items()}  # fmt: skip
    torch.save(state, tmp_path / "evaluator.pt")
    old = {k: v for k, v in info.items() if k not in ("file", "converted_from")}
    old["sha256"] = sha256_file(tmp_path / "evaluator.pt")
    (tmp_path / "evaluator.json").write_text(json.dumps(old))
    a = real_sets[0][:50]
    assert torch.equal(load_evaluator(tmp_path).features(a)[0], evaluator.features(a)[0])
    save_evaluator(tmp_path / "new", load_evaluator(tmp_path).net, {"recipe": info["recipe"]})
    assert (tmp_path / "new" / "evaluator.safetensors").is_file()
    assert torch.equal(load_evaluator(tmp_path / "new").features(a)[0], evaluator.features(a)[0])
    (tmp_path / "evaluator.pt").write_bytes(b"not a pickle")
    with pytest.raises(FashionGANError, match="SHA-256"):
        load_evaluator(tmp_path)
    with pytest.raises(FashionGANError, match="cannot load"):
        load_evaluator(tmp_path, verify=False)


def test_evaluator_stats_cli_writes_statistics_for_any_evaluator(tiny_evaluator, tmp_path, capsys):  # noqa: F811
    import shutil

    from fashiongan.cli import main
    from fashiongan.metrics.fid import gaussian_stats
    from fashiongan.metrics.reference import STATS_FILE, real_features, shipped_stats

    source, data = tiny_evaluator
    ev_dir = tmp_path / "ev"
    shutil.copytree(source, ev_dir)
    assert main(["evaluator", "stats", str(ev_dir), "--data", str(data)]) == 0
    assert STATS_FILE in capsys.readouterr().out
    ev = load_evaluator(ev_dir)
    stats = shipped_stats(ev, "test")
    real = real_features(ev, "test", tmp_path / "cache", str(data))
    mu, sigma = gaussian_stats(real.features)
    assert stats.n == len(real) == 100 and stats.checksum == real.checksum
    assert np.allclose(stats.mu, mu) and np.allclose(stats.sigma, sigma)
    assert stats.floors["10000"]["fid"] >= 0  # the whole other split: n above its size
    assert main(["evaluator", "stats", str(tmp_path / "none")]) == 2
