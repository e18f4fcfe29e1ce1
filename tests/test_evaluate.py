"""The evaluator, image-set sources, `fashiongan evaluate`, --eval-every and compare, on tiny
synthetic data with a tiny evaluator trained in the test (fast; the real ones are in
test_real_metrics.py)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_images
from fashiongan.checkpoint import load_checkpoint
from fashiongan.cli import main
from fashiongan.data.datasets import load_dataset
from fashiongan.dataset_export import export
from fashiongan.errors import FashionGANError
from fashiongan.metrics.evaluate import default_out_dir, evaluate
from fashiongan.metrics.evaluator import (
    Recipe,
    load_evaluator,
    prepare,
    save_evaluator,
    train_classifier,
    train_evaluator,
)
from fashiongan.metrics.sources import read_image_set
from fashiongan.metrics.suite import METRICS, applicable
from fashiongan.training.loop import train
from fashiongan.training.monitor import read_metrics
from test_training import tiny

TINY = Recipe(channels=(4, 8), convs=(1, 1), features=16, epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def tiny_evaluator(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    from fashiongan.data.idx import write_idx

    for prefix, n, seed in (("train", 20, 0), ("t10k", 10, 1)):
        images, labels = synthetic_images(n, seed=seed)
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    out = tmp_path_factory.mktemp("evaluator")
    train_evaluator(
        load_dataset(str(d), "train"), load_dataset(str(d), "test"), out, TINY, log=lambda s: None
    )
    return out, d


def test_recipe_is_reproducible_and_saves_with_its_hash(tmp_path):
    images, labels = synthetic_images(5)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, b = train_classifier(x, y, TINY), train_classifier(x, y, TINY)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    save_evaluator(tmp_path, a, {"recipe": TINY.__dict__, "test_accuracy": 0.5})
    info = json.loads((tmp_path / "evaluator.json").read_text())
    ev = load_evaluator(tmp_path)
    assert ev.id == f"fmnist-cnn-{info['sha256'][:12]}"
    features, logits = ev.evaluate(x)
    assert features.shape == (len(x), 16) and logits.shape == (len(x), 10)
    # 64×64 input is shrunk to 28×28 first
    big = torch.nn.functional.interpolate(x[:, None].float(), size=64).to(torch.uint8)[:, 0]
    assert ev.evaluate(big)[0].shape == (len(x), 16)
    raw = bytearray((tmp_path / "evaluator.safetensors").read_bytes())
    raw[-100] ^= 0xFF
    (tmp_path / "evaluator.safetensors").write_bytes(bytes(raw))
    with pytest.raises(FashionGANError, match="SHA-256"):
        load_evaluator(tmp_path)


def test_missing_evaluator_says_how_to_train_one(tmp_path):
    with pytest.raises(FashionGANError, match="fashiongan evaluator train"):
        load_evaluator(tmp_path)


def test_prepare_checks_dtype_and_range():
    images = torch.zeros(1, 28, 28, dtype=torch.uint8)
    images[0, :, 14:] = 255
    x = prepare(images)
    assert x.shape == (1, 1, 28, 28) and x.min() == -1 and x.max() == 1
    with pytest.raises(FashionGANError, match="uint8"):
        prepare(torch.zeros(1, 28, 28))


@pytest.mark.parametrize("fmt", ["npz", "csv", "idx", "pngs"])
def test_every_export_format_reads_back(tmp_path, fmt):
    images, labels = synthetic_images(3)
    out = tmp_path / ("set." + fmt if fmt in ("npz", "csv") else "set")
    export(out, images, labels, fmt, tuple(str(i) for i in range(10)))
    source = out / "train-images-idx3-ubyte.gz" if fmt == "idx" else out
    got = read_image_set(str(source))
    order = np.argsort(got.labels.numpy(), kind="stable")
    assert np.array_equal(got.images.numpy()[order], images[np.argsort(labels, kind="stable")])
    assert sorted(got.labels.tolist()) == sorted(labels.tolist())


def test_unlabelled_sources(tmp_path):
    images, _ = synthetic_images(2)
    export(tmp_path / "u.npz", images, None, "npz", ("a",))
    assert read_image_set(str(tmp_path / "u.npz")).labels is None
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, img in enumerate(images[:5]):
        Image.fromarray(img).save(flat / f"{i}.png")
    got = read_image_set(str(flat))
    assert got.labels is None and got.images.shape == (5, 28, 28)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: np.savez(p / "x.npz", images=np.zeros((4, 28, 28), np.float32)), "uint8"),
        (
            lambda p: np.savez(p / "x.npz", images=np.zeros((4, 28, 28), np.uint8), labels=[1]),
            "4 images but 1 labels",
        ),
        (
            lambda p: np.savez(
                p / "x.npz", images=np.zeros((4, 28, 28), np.uint8), labels=[1, 2, 3, -5]
            ),
            "class ids",  # (ids above the evaluator's classes are refused by evaluate)
        ),
        (lambda p: np.savez(p / "x.npz", pixels=np.zeros((4, 28, 28), np.uint8)), "no 'images'"),
        (lambda p: (p / "x.npz").write_bytes(b"not a zip"), "not a readable .npz"),
        (lambda p: Image.new("L", (28, 28)).save(p / "x.png"), "single PNG"),
        (lambda p: (p / "x.txt").write_text("?"), "cannot tell"),
    ],
)
def test_bad_sources_are_one_line_errors(tmp_path, make, message):
    make(tmp_path)
    name = next(p.name for p in tmp_path.iterdir())
    with pytest.raises(FashionGANError, match=message):
        read_image_set(str(tmp_path / name))


def test_metric_selection():
    fast = applicable(None, labelled=True)
    assert "cas" not in fast and "label_accuracy" in fast and "fid" in fast
    assert "label_accuracy" not in applicable(None, labelled=False)
    with pytest.raises(FashionGANError, match="needs labelled"):
        applicable(["label_accuracy"], labelled=False)
    with pytest.raises(FashionGANError, match="unknown metric"):
        METRICS.get("fidd")


def test_evaluate_writes_report_with_floors_and_provenance(tiny_evaluator, tmp_path):
    ev_dir, data = tiny_evaluator
    test = load_dataset(str(data), "test")
    path = tmp_path / "real.npz"
    np.savez(path, images=test.images.numpy(), labels=test.labels.numpy())
    result = evaluate(
        str(path),
        evaluator=load_evaluator(ev_dir),
        cache_dir=tmp_path / "cache",
        data=str(data),
        memorization_samples=50,
        log=lambda s: None,
    )
    r = result.results
    assert result.out_dir == tmp_path / "real-eval"
    for key in ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
                "coverage", "label_accuracy", "class_fid", "class_entropy", "nn_pixel",
                "near_copies"):  # fmt: skip
        assert key in r, key
    assert r["fid"] == pytest.approx(0, abs=1e-6)  # the reference split itself
    assert r["label_accuracy"] == pytest.approx(load_evaluator(ev_dir).info["test_accuracy"])
    assert set(r["floors"]) >= {"fid", "kid", "is", "precision", "label_accuracy"}
    p = r["provenance"]
    assert p["evaluator"] == load_evaluator(ev_dir).id and p["n_fake"] == len(test)
    assert p["split"] == "test" and p["n_real"] == len(test)
    saved = json.loads((result.out_dir / "metrics.json").read_text())
    assert saved["fid"] == r["fid"]
    for name in ("report.md", "confusion.png", "class_histogram.png", "closest_pairs.png",
                 "samples.png"):  # fmt: skip
        assert (result.out_dir / name).is_file(), name
    assert "real-vs-real floor" in (result.out_dir / "report.md").read_text()
    # floors and reference features are cached: a second run reads them
    cached = list((tmp_path / "cache" / "eval").rglob("*"))
    assert any(f.name.startswith("floors-") for f in cached)
    assert any(f.name.startswith("test-") for f in cached)


def test_evaluate_cli_on_a_run_and_cas(tiny_evaluator, tmp_path, capsys, monkeypatch):
    ev_dir, data = tiny_evaluator
    cfg = tiny(data, steps=4)
    train(cfg, tmp_path / "run")
    monkeypatch.setenv("FASHIONGAN_CACHE", str(tmp_path / "cache"))
    argv = ["evaluate", str(tmp_path / "run"), "--evaluator", str(ev_dir), "--data", str(data),
            "--num-samples", "100", "--metrics", "fid,label_accuracy,cas,memorization",
            "--cas-per-class", "8"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "FID" in out and "CAS" in out and "real floor" in out
    r = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert 0 <= r["cas"] <= 1 and 0 <= r["cas_reverse"] <= 1
    assert r["cas_ratio"] == pytest.approx(r["cas"] / r["cas_real"])
    assert r["provenance"]["n_fake"] == 100 and r["provenance"]["generator_step"] == 4
    assert r["provenance"]["metrics"] == ["fid", "label_accuracy", "cas", "memorization"]
    assert r["provenance"]["cas_images"] == "8 per class, seed 1"
    assert default_out_dir(tmp_path / "run" / "checkpoints" / "final.pt") == (
        tmp_path / "run" / "eval-final"
    )


def test_evaluate_cli_errors_are_one_line(tiny_evaluator, tmp_path, capsys):
    ev_dir, data = tiny_evaluator
    assert main(["evaluate", str(tmp_path / "nothing.npz"), "--evaluator", str(ev_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    assert main(["evaluate", "x.npz", "--metrics", "fid,bogus"]) == 2
    assert "unknown metric bogus" in capsys.readouterr().err
    images, _ = synthetic_images(2)
    export(tmp_path / "u.npz", images, None, "npz", ("a",))
    argv = ["evaluate", str(tmp_path / "u.npz"), "--evaluator", str(ev_dir), "--data", str(data),
            "--metrics", "label_accuracy"]  # fmt: skip
    assert main(argv) == 2
    assert "needs labelled images" in capsys.readouterr().err


def test_eval_every_logs_plots_and_keeps_best(tiny_evaluator, tmp_path, monkeypatch):
    ev_dir, data = tiny_evaluator
    cfg = tiny(data, steps=6)
    cfg.log.evaluator = str(ev_dir)
    cfg.log.eval_every = 3
    cfg.log.eval_samples = 100
    train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "fid" in r]
    assert [r["step"] for r in rows] == [3, 6]
    assert all("label_accuracy" in r and r["is"] >= 1 for r in rows)
    assert rows[0]["evaluator"] == load_evaluator(ev_dir).id
    assert rows[-1]["best_fid"] == min(r["fid"] for r in rows)
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["best_fid"] == pytest.approx(rows[-1]["best_fid"])
    assert (tmp_path / "run" / "plots" / "eval.png").is_file()
    # resume keeps the best FID so far and continues the evaluations
    cfg.train.steps = 9
    train(cfg, tmp_path / "run", resume=True, cache_dir=tmp_path / "cache")
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "fid" in r]
    assert [r["step"] for r in rows] == [3, 6, 9]
    assert rows[-1]["best_fid"] == min(r["fid"] for r in rows)


def test_compare_trains_evaluates_and_tabulates(tiny_evaluator, tmp_path, monkeypatch):
    ev_dir, data = tiny_evaluator
    import fashiongan.cli as cli

    monkeypatch.setenv("FASHIONGAN_CACHE", str(tmp_path / "cache"))
    argv = ["compare", "--losses", "ns,hinge", "--jobs", "2", "--out", str(tmp_path / "cmp"),
            "--data", str(data), "--steps", "4", "--width", "0.25", "--z-dim", "16",
            "--batch-size", "16", "--eval-every", "2", "--eval-samples", "100",
            "--num-samples", "100", "--grid-seeds", "2", "--evaluator", str(ev_dir)]  # fmt: skip
    assert cli.main(argv) == 0
    out = tmp_path / "cmp"
    rows = (out / "compare.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[1].startswith("ns-s0") and rows[2].startswith("hinge-s0")
    for name in ("compare.md", "fid.png", "samples.png"):
        assert (out / name).is_file(), name
    md = (out / "compare.md").read_text()
    assert "real vs real" in md and "hinge-s0" in md and load_evaluator(ev_dir).id in md


def test_compare_summarises_seeds():
    from fashiongan.compare.runs import Outcome, Variant, seed_summary
    from fashiongan.config import RunConfig

    def outcome(label, seed, fid):
        return Outcome(Variant(f"{label}-s{seed}", label, seed, RunConfig()), None, True,
                       results={"fid": fid, "kid": 0.001})  # fmt: skip

    assert seed_summary([outcome("ns", 0, 10.0), outcome("hinge", 0, 12.0)]) == []
    lines = seed_summary([outcome("ns", 0, 10.0), outcome("ns", 1, 14.0), outcome("hinge", 0, 9)])
    row = next(line for line in lines if line.startswith("| ns "))
    assert "| 2 | 12.000 ± 2.000 | 1.000 ± 0.000 |" in row
    assert any(line.startswith("| hinge | 1 | 9.000 ± 0.000") for line in lines)


def test_evaluator_cli_trains_and_describes(tiny_evaluator, tmp_path, capsys):
    _, data = tiny_evaluator
    out = tmp_path / "ev"
    argv = ["evaluator", "train", "--out", str(out), "--epochs", "1", "--data", str(data)]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["evaluator", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert load_evaluator(out).id in info and '"epochs": 1' in info
    assert main(["evaluator", "train", "--out", str(out), "--epochs", "0"]) == 2
    assert "--epochs 0" in capsys.readouterr().err


def test_evaluator_trained_on_other_data_is_refused_unless_forced(tiny_evaluator, tmp_path):
    _, data = tiny_evaluator
    images, labels = synthetic_images(10)
    from fashiongan.metrics.sources import ImageSet

    def score(force: bool):
        lines = []
        result = evaluate(
            ImageSet(torch.from_numpy(images), torch.from_numpy(labels), "synthetic"),
            metrics=["fid"],
            evaluator=load_evaluator(),  # the shipped Fashion-MNIST one
            cache_dir=tmp_path,
            data=str(data),
            write=False,
            log=lines.append,
            force_evaluator=force,
        )
        return result, lines

    with pytest.raises(FashionGANError, match="trained on other data.*--force-evaluator"):
        score(False)
    result, lines = score(True)
    assert any("trained on other data" in line for line in lines)
    assert any(n.startswith("forced:") for n in result.results["provenance"]["notes"])


def test_compare_presets_and_bad_input(tiny_evaluator, tmp_path, capsys):
    ev_dir, data = tiny_evaluator
    out = tmp_path / "cmp"
    argv = ["compare", "--presets", "dcgan-bce,dcgan-lsgan", "--out", str(out), "--data",
            str(data), "--steps", "2", "--width", "0.25", "--batch-size", "16", "--z-dim", "8",
            "--eval-samples", "100", "--num-samples", "100", "--grid-seeds", "2",
            "--evaluator", str(ev_dir)]  # fmt: skip
    from fashiongan.cli import main as cli_main

    assert cli_main(argv) == 0
    rows = (out / "compare.csv").read_text().strip().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["dcgan-bce", "dcgan-lsgan"]
    assert cli_main(["compare", "--losses", "ns", "--presets", "default"]) == 2
    assert "not both" in capsys.readouterr().err


def test_compare_adapts_and_notes_settings_a_loss_cannot_take():
    from fashiongan.compare.runs import loss_variants
    from fashiongan.config import RunConfig, to_dict

    base = to_dict(RunConfig())
    base["loss"]["label_smoothing"] = 0.9
    base["model"]["d_norm"] = "batch"
    variants = {v.label: v for v in loss_variants(base, ["ns", "hinge", "wgan-gp"], [0, 1])}
    assert variants["ns"].note == "" and variants["ns"].cfg.loss.label_smoothing == 0.9
    assert variants["hinge"].cfg.loss.label_smoothing == 1.0
    assert "no label smoothing" in variants["hinge"].note
    gp = variants["wgan-gp"]
    assert gp.cfg.model.d_norm == "none" and "d_norm none" in gp.note and gp.seed == 1


@pytest.fixture(scope="module")
def tiny_run(tiny_evaluator, tmp_path_factory):
    _, data = tiny_evaluator
    run = tmp_path_factory.mktemp("run") / "run"
    train(tiny(data, steps=2), run)
    return run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--config", "{tmp}/missing.json", "--steps", "1"], "--config"),
        (["train", "--config", "{tmp}/bad.json", "--steps", "1"], "not valid JSON"),
        (["train", "--config", "{tmp}/list.json", "--steps", "1"], "JSON object"),
        (["train", "--config", "{tmp}/bad.json", "--preset", "default"], "not both"),
        (["train", "--eval-every", "-1", "--steps", "1", "--dry-run"], "--eval-every -1"),
        (["train", "--eval-samples", "50", "--steps", "1", "--dry-run"], "--eval-samples 50"),
        (["evaluate", "{run}", "--memorization-samples", "0"], "--memorization-samples 0"),
        (["evaluate", "{run}", "--num-samples", "1"], "--num-samples 1"),
        (["evaluate", "{run}", "--cas-per-class", "0"], "--cas-per-class 0"),
        (["evaluate", "{run}", "--reference", "val"], "invalid choice"),
        (
            ["compare", "--losses", "ns", "--jobs", "0", "--steps", "1", "--out", "{tmp}/c"],
            "--jobs 0",
        ),  # fmt: skip
        (["compare", "--losses", "nss", "--steps", "1", "--out", "{tmp}/c"], "unknown loss"),
    ],
)
def test_new_flags_reject_bad_input_in_one_line(tiny_run, tmp_path, capsys, argv, message):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "list.json").write_text("[1, 2]")
    argv = [a.format(tmp=tmp_path, run=tiny_run) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "c").exists()  # nothing half-written


def test_sweep_trains_a_grid_times_seeds_and_summarises(tiny_evaluator, tmp_path, monkeypatch):
    ev_dir, data = tiny_evaluator
    import fashiongan.cli as cli

    monkeypatch.setenv("FASHIONGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sw"
    argv = ["sweep", "--grid", "lr_g=1e-3,2e-3", "--grid", "betas=0/0.99", "--seeds", "0", "1",
            "--jobs", "2", "--out", str(out), "--data", str(data), "--steps", "3",
            "--width", "0.25", "--z-dim", "16", "--batch-size", "16", "--eval-samples", "100",
            "--num-samples", "100", "--grid-seeds", "2", "--evaluator", str(ev_dir)]  # fmt: skip
    assert cli.main(argv) == 0
    rows = (out / "compare.csv").read_text().strip().splitlines()
    assert rows[0].startswith("run,lr_g × betas,seed,")
    assert [r.split(",")[0] for r in rows[1:]] == [
        "lr_g-1e-3_betas-0_0.99-s0", "lr_g-1e-3_betas-0_0.99-s1",
        "lr_g-2e-3_betas-0_0.99-s0", "lr_g-2e-3_betas-0_0.99-s1",
    ]  # fmt: skip
    saved = json.loads((out / "runs" / "lr_g-2e-3_betas-0_0.99-s1" / "config.json").read_text())
    assert saved["train"]["lr_g"] == 2e-3 and saved["train"]["seed"] == 1
    assert saved["train"]["betas"] == [0.0, 0.99]
    md = (out / "compare.md").read_text()
    assert "# fashiongan sweep over lr_g × betas" in md and "Mean ± std over seeds" in md
    assert "| lr_g=1e-3 betas=0/0.99 | 2 |" in md and "| lr_g=2e-3 betas=0/0.99 | 2 |" in md


def test_progress_line_shows_every_run(tmp_path):
    from fashiongan.compare.runs import Variant, progress_line
    from fashiongan.config import RunConfig

    variants = [Variant(f"v{i}", "x", 0, RunConfig()) for i in range(4)]
    run = tmp_path / "runs" / "v1"
    run.mkdir(parents=True)
    rows = [{"step": 50, "kimg": 3.2, "loss_d": 1.0}, {"step": 50, "fid": 42.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"st')
    state = {"v0": "done", "v1": "running", "v2": "running", "v3": "failed"}
    line = progress_line(variants, state, tmp_path, 12.0)
    assert line.startswith("[   12 s] 1/4 done, 2 running, 0 queued, 1 failed | ")
    assert "v1 step 50 3.2 kimg FID 42.50" in line and "v2 starting" in line


@pytest.mark.parametrize(
    "grid, message",
    [
        ("lr_g", "--grid 'lr_g': expected KEY=V1,V2,..."),
        ("lr_g=", "--grid 'lr_g=': expected KEY=V1,V2,..."),
        ("foo=1,2", "'foo' is not a training setting"),
        ("lr_g=abc", "lr_g=abc: argument --lr-g: invalid float value: 'abc'"),
        ("loss=nope", "loss=nope: argument --loss: invalid choice: 'nope'"),
        ("spectral_norm=maybe", "spectral_norm=maybe: expected true or false"),
    ],
)
def test_sweep_bad_grid_is_a_one_line_error(grid, message, tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "--grid", grid, "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before anything was written
