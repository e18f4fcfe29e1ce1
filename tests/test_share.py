"""Deploying and sharing a generator: `export --format onnx` (checked with ONNX Runtime) and
`export --format dir` (weights, config.json, model card) read by load_generator, generate,
evaluate and serve."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_train_idx
from fashiongan.cli import main
from fashiongan.config import RunConfig
from fashiongan.errors import FashionGANError
from fashiongan.sampling import latents, load_generator
from fashiongan.training.loop import train


def tiny_run(root: Path, name: str, cond: str, width: float = 0.25, model="dcgan28") -> Path:
    data = write_train_idx(root / "idx")
    cfg = RunConfig()
    cfg.data.data, cfg.data.class_names = str(data), "fashion"
    cfg.model.model, cfg.model.width, cfg.model.z_dim, cfg.model.cond = model, width, 16, cond
    cfg.train.batch_size, cfg.train.epochs, cfg.train.steps = 16, 0, 6
    cfg.train.ema_kimg = 0.1
    cfg.log.log_every, cfg.log.progress, cfg.log.grid_seeds = 3, False, 3
    return train(cfg, root / name).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("share")
    return {
        "projection": tiny_run(root, "projection", "projection"),
        "concat": tiny_run(root, "concat", "concat", width=0.5),
        "none": tiny_run(root, "none", "none"),
    }


@pytest.mark.parametrize("kind", ["projection", "concat", "none"])
def test_onnx_matches_pytorch_with_a_dynamic_batch(runs, kind, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "g.onnx"
    assert main(["export", str(runs[kind]), "--format", "onnx", "--out", str(out)]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    gen = load_generator(runs[kind])
    assert json.loads(meta["class_names"]) == list(gen.class_names)
    assert int(meta["z_dim"]) == gen.z_dim and meta["conditional"] == str(kind != "none").lower()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["z", "labels"] if kind != "none" else ["z"])
    for n in (1, 37, 300):  # any batch size: the batch axis is dynamic
        z = latents(5, n, gen.z_dim)
        y = torch.arange(n) % 10 if kind != "none" else None
        feeds = {"z": z.numpy(), **({"labels": y.numpy()} if y is not None else {})}
        images, pixels = session.run(None, feeds)
        with torch.no_grad():
            ref = gen.G(z, y)
        assert images.shape == (n, 1, 28, 28) and pixels.dtype == np.uint8
        assert np.abs(images - ref.numpy()).max() < 1e-4  # the stated tolerance
        ours = gen.images(z, y).numpy()
        diff = np.abs(pixels[:, 0].astype(int) - ours.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # a rounding flip at most


def test_onnx_errors_are_one_line(runs, tmp_path, capsys, monkeypatch):
    argv = ["export", str(runs["none"]), "--format", "onnx", "--out", str(tmp_path / "g.pt")]
    assert main(argv) == 2
    assert ".onnx" in capsys.readouterr().err
    import builtins

    real_import = builtins.__import__

    def no_onnxscript(name, *args, **kwargs):
        if name == "onnxscript":
            raise ImportError("No module named 'onnxscript'", name="onnxscript")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxscript)
    assert main(argv[:-1] + [str(tmp_path / "g.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'fashiongan[onnx]'" in err
    assert not (tmp_path / "g.onnx").exists()


def test_onnx_export_refuses_a_graph_that_disagrees(runs, tmp_path, monkeypatch):
    from fashiongan import onnx_export

    real = onnx_export.check_onnx

    def off(data, gen, n=64):
        check = real(data, gen, n)
        return {**check, "max_abs_diff": 0.5}

    monkeypatch.setattr(onnx_export, "check_onnx", off)
    with pytest.raises(FashionGANError, match="disagree"):
        onnx_export.export_onnx(load_generator(runs["none"]), tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_model_directory_loads_everywhere_with_its_card(runs, tmp_path, capsys):
    run = runs["projection"]
    (run / "eval").mkdir(exist_ok=True)  # what `fashiongan evaluate` leaves, in short
    metrics = {"fid": 12.5, "is": 3.25, "floors": {"fid": 0.5},
               "provenance": {"generator_step": 6, "n_fake": 200, "n_real": 100,
                              "split": "test", "evaluator": "fmnist-cnn-x"}}  # fmt: skip
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "model"
    assert main(["export", str(run), "--format", "dir", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "metrics.json", "model.safetensors"]  # fmt: skip
    card = (out / "README.md").read_text()
    for section in ("## Data", "## Recipe and budget", "## Metrics", "## Intended use and limits"):
        assert section in card
    assert "| FID | 12.5 | 0.5 | lower |" in card and "not comparable with papers" in card
    info = json.loads((out / "config.json").read_text())
    assert info["format"] == "fashiongan-model" and info["training"]["step"] == 6
    a, b = load_generator(out), load_generator(run)
    z, y = latents(0, 20, a.z_dim), torch.arange(20) % 10
    assert torch.equal(a.images(z, y), b.images(z, y))  # the EMA weights, bit for bit
    assert main(["generate", str(out), "--per-class", "2", "--out", str(tmp_path / "g.npz")]) == 0
    # serve: the card's metrics come with the model
    from fastapi.testclient import TestClient

    from fashiongan.serve.app import create_app

    client = TestClient(create_app([(out, a)]))
    described = client.get("/v1/models").json()[0]
    assert described["id"] == "model" and described["metrics"] == {"fid": 12.5, "is": 3.25}
    # a second export into it, damaged weights, a foreign config: one line each
    assert main(["export", str(run), "--format", "dir", "--out", str(out)]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    raw = bytearray((out / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (out / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(FashionGANError, match="SHA-256"):
        load_generator(out)
    (out / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(FashionGANError, match="not a fashiongan model"):
        load_generator(out)


def test_card_without_evaluation_says_how_to_get_one(runs, tmp_path):
    out = tmp_path / "m"
    assert main(["export", str(runs["none"]), "--format", "dir", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "Not evaluated" in card and "unconditional" in card
    assert not (out / "metrics.json").exists()


def test_flat_layout_from_the_command_line_and_flags_that_do_nothing(runs, tmp_path, capsys):
    out = tmp_path / "flat"
    argv = ["generate", str(runs["projection"]), "--per-class", "2", "--format", "pngs"]
    assert main(argv + ["--layout", "flat", "--out", str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 20 and (out / "labels.csv").is_file()
    capsys.readouterr()
    for bad, message in (
        (["generate", str(runs["projection"]), "--layout", "flat", "--out",
          str(tmp_path / "s.npz")], "--layout flat is for --format pngs"),
        (["train", "--eval-features", "inception", "--steps", "1", "--out",
          str(tmp_path / "r1")], "add --eval-every N"),
        (["train", "--inception-weights", "w.pth", "--steps", "1", "--out",
          str(tmp_path / "r2")], "--inception-weights is for --eval-features inception"),
    ):  # fmt: skip
        assert main(bad) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "r1").exists()
