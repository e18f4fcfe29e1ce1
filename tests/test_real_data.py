"""End to end on the real Fashion-MNIST (installed by .ci/run): train, generate, resume."""

import numpy as np

from fashiongan import load_generator
from fashiongan.cli import main
from fashiongan.training.monitor import read_metrics


def test_train_generate_resume_on_fashion_mnist(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("FASHIONGAN_DATA", str(real_data))  # found through the search path
    run = tmp_path / "run"
    common = ["--width", "0.5", "--log-every", "50", "--no-progress", "--epochs", "0"]
    assert main(["train", "--steps", "200", "--out", str(run), *common]) == 0
    assert main(["train", "--resume", str(run), "--steps", "300", *common[4:]]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    assert rows[-1]["kimg"] == 300 * 64 / 1000
    assert main(["generate", str(run), "--per-class", "20", "--out", str(tmp_path / "s.npz")]) == 0
    z = np.load(tmp_path / "s.npz")
    assert z["images"].shape == (200, 28, 28) and np.bincount(z["labels"]).tolist() == [20] * 10
    assert list(z["class_names"])[7] == "sneaker"
    # after 19 kimg the generator has left its initial gray noise: dark background, bright garments
    images = z["images"].astype(float)
    assert images[:, :, :3].mean() < 60 and images[:, 8:20, 10:18].mean() > 60
    gen = load_generator(run)
    assert gen.step == 300 and gen.class_names[9] == "ankle boot"
