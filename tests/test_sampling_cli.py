"""generate / interpolate / train / presets through the CLI, the Python API, and every user
error as one line on stderr with exit status 2."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fashiongan import load_generator
from fashiongan.cli import main
from fashiongan.data import load_dataset
from fashiongan.data.csv import read_csv
from fashiongan.sampling import latents, slerp

TINY = [
    "--width",
    "0.25",
    "--z-dim",
    "16",
    "--batch-size",
    "16",
    "--epochs",
    "0",
    "--no-progress",
    "--grid-seeds",
    "3",
    "--ema-kimg",
    "0.1",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conditional and an unconditional run trained for 4 steps on synthetic data."""
    from conftest import synthetic_images
    from fashiongan.data.idx import write_idx

    root = tmp_path_factory.mktemp("runs")
    images, labels = synthetic_images(20)
    write_idx(root / "data" / "train-images-idx3-ubyte.gz", images)
    write_idx(root / "data" / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    for name, cond in (("cond", "projection"), ("uncond", "none")):
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(root / "data"),
                    "--class-names",
                    "fashion",
                    "--cond",
                    cond,
                    "--steps",
                    "4",
                    "--out",
                    str(root / name),
                    *TINY,
                ]
            )
            == 0
        )
    return root


def one_line_error(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fashiongan"), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_train_writes_the_run_directory(runs):
    run = runs / "cond"
    for path in (
        "config.json",
        "log.txt",
        "metrics.jsonl",
        "checkpoints/final.pt",
        "checkpoints/latest.pt",
        "samples/progress.gif",
        "plots/training.png",
    ):
        assert (run / path).is_file(), path
    grid = Image.open(next((run / "samples").glob("grid-*.png")))
    assert grid.height > 10 * 28  # ten labelled class rows


def test_api_sample_is_seeded(runs):
    gen = load_generator(runs / "cond")
    a = gen.sample(20, seed=3)
    assert a.dtype == np.uint8 and a.shape == (20, 28, 28)
    assert np.array_equal(a, gen.sample(20, seed=3)) and not np.array_equal(
        a, gen.sample(20, seed=4)
    )
    assert gen.class_names[7] == "sneaker"
    assert not np.array_equal(gen.sample(5), gen.sample(5))  # seed=None: fresh each call
    b = gen.sample(2, labels=["sneaker", 9], seed=0)
    assert b.shape == (2, 28, 28)
    assert not np.array_equal(
        gen.sample(1, labels=["bag"], seed=0), gen.sample(1, labels=["coat"], seed=0)
    )


@pytest.mark.parametrize("fmt", ["png", "pngs", "npz", "idx", "csv"])
def test_generate_every_format_loads_back(runs, tmp_path, fmt):
    out = tmp_path / {"png": "g.png", "npz": "g.npz", "csv": "g.csv"}.get(fmt, "g")
    assert (
        main(
            [
                "generate",
                str(runs / "cond"),
                "--out",
                str(out),
                "--format",
                fmt,
                "--per-class",
                "3",
                "--class",
                "sneaker",
                "--class",
                "bag",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    expected = load_generator(runs / "cond").sample(6, labels=[7, 7, 7, 8, 8, 8], seed=1)
    if fmt == "npz":
        z = np.load(out)
        assert np.array_equal(z["images"], expected) and z["labels"].tolist() == [7] * 3 + [8] * 3
    elif fmt == "csv":
        images, labels = read_csv(out)
        assert np.array_equal(images, expected) and labels.tolist() == [7] * 3 + [8] * 3
    elif fmt == "idx":
        d = load_dataset(str(out))  # our own loader reads the exported pair as a data set
        assert torch.equal(d.images, torch.from_numpy(expected))
    elif fmt == "pngs":
        files = sorted(out.rglob("*.png"))
        assert {p.parent.name for p in files} == {"7_sneaker", "8_bag"} and len(files) == 6
        assert np.array_equal(np.array(Image.open(files[0])), expected[0])
    else:  # labelled rows (sneaker, bag), images upscaled ×2 as in the training grids
        img = Image.open(out)
        assert img.height == 2 * (2 * 30 + 2) and img.width > 2 * (3 * 30 + 2)


def test_png_folder_export_is_all_or_nothing(runs, tmp_path, capsys):
    out = tmp_path / "folder"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    one_line_error(
        capsys,
        ["generate", str(runs / "cond"), "--out", str(out), "--format", "pngs"],
        "exists and is not an empty directory",
    )
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_generate_unconditional_and_resize(runs, tmp_path):
    assert (
        main(
            [
                "generate",
                str(runs / "uncond"),
                "--out",
                str(tmp_path / "u.npz"),
                "--num-samples",
                "7",
                "--size",
                "64",
            ]
        )
        == 0
    )
    z = np.load(tmp_path / "u.npz")
    assert z["images"].shape == (7, 64, 64) and (z["labels"] == -1).all()


def test_generate_from_checkpoint_file_and_no_ema(runs, tmp_path):
    ckpt = runs / "cond" / "checkpoints" / "final.pt"
    assert main(["generate", str(ckpt), "--out", str(tmp_path / "a.npz"), "--no-ema"]) == 0
    assert main(["generate", str(ckpt), "--out", str(tmp_path / "b.npz")]) == 0
    assert not np.array_equal(
        np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"]
    )


@pytest.mark.parametrize(
    "argv_tail",
    [
        ["--out", "w.png", "--seeds", "0", "1", "2", "--class", "sneaker"],
        ["--out", "w.gif", "--seeds", "0", "1"],
        [
            "--out",
            "c.png",
            "--seeds",
            "5",
            "--class",
            "sneaker",
            "--class",
            "ankle boot",
            "--mode",
            "lerp",
        ],
    ],
)
def test_interpolate(runs, tmp_path, argv_tail):
    argv_tail = [str(tmp_path / a) if a.endswith((".png", ".gif")) else a for a in argv_tail]
    assert main(["interpolate", str(runs / "cond"), "--steps", "5", *argv_tail]) == 0
    img = Image.open(argv_tail[1])
    if argv_tail[1].endswith(".gif"):
        # a walk per class (10), each frame a 4-column grid of them; 5 frames there, 3 back
        assert img.width == 2 * (4 * 30 + 2) and img.n_frames == 8
    else:  # 5 frames per row, upscaled ×2
        assert img.width == 2 * (5 * 30 + 2)


def test_slerp_endpoints_and_norm():
    a, b = latents([1], None, 64), latents([2], None, 64)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a[0], atol=1e-5) and torch.allclose(path[-1], b[0], atol=1e-5)
    assert torch.equal(latents([1, 2], None, 64)[1], b[0])  # one seed, one latent


def test_presets_command(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in (
        "default",
        "cdcgan-bce",
        "dcgan-bce",
        "dcgan-lsgan",
        "dcgan-hinge",
        "dcgan64",
        "cgan-wgan-gp",
    ):
        assert name in out


def test_dry_run_resolves_preset_then_flags(capsys):
    assert main(["train", "--preset", "cdcgan-bce", "--lr-d", "3e-4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"lr_d": 0.0003' in out and '"label_smoothing": 0.9' in out and '"cond": "concat"' in out


def test_resume_through_cli(runs, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs / "cond", run)
    assert main(["train", "--resume", str(run), "--steps", "6"]) == 0
    assert "resumed at step 4" in (run / "log.txt").read_text()
    one_line_error(
        capsys,
        ["train", "--resume", str(run), "--steps", "8", "--loss", "hinge"],
        "loss.loss: 'ragan' in the run, 'hinge' now",
        "--override",
    )


def test_user_errors_are_one_line(runs, tmp_path, capsys):
    cond, uncond = str(runs / "cond"), str(runs / "uncond")
    out = str(tmp_path / "x.png")
    cases = [
        (
            ["generate", uncond, "--out", out, "--class", "sneaker"],
            ["--class needs a conditional model"],
        ),
        (
            ["generate", uncond, "--out", out, "--per-class", "3"],
            ["--per-class needs a conditional"],
        ),
        (
            ["generate", cond, "--out", out, "--class", "sock"],
            ["unknown class 'sock'", "7=sneaker"],
        ),
        (["generate", cond, "--out", str(tmp_path / "x.jpg")], ["--format"]),
        (["generate", cond, "--out", out, "--num-samples", "0"], ["--num-samples 0"]),
        (["generate", cond, "--out", out, "--device", "tpu"], ["invalid choice: 'tpu'"]),
        (["generate", str(tmp_path / "nope"), "--out", out], ["no such run directory"]),
        (["generate", uncond, "--out", str(tmp_path / "x.csv")], ["needs labels"]),
        (["interpolate", cond, "--out", str(tmp_path / "x.bmp")], [".png", ".gif"]),
        (
            ["interpolate", uncond, "--out", out, "--seeds", "1", "--class", "0", "--class", "1"],
            ["conditional model"],
        ),
        (["train", "--out", cond, "--steps", "1"], ["already holds a run", "--resume"]),
        (["train", "--loss", "bce"], ["invalid choice: 'bce'"]),
        (["train", "--model", "dcgan48"], ["invalid choice"]),
        (["train", "--max-time", "ten minutes"], ["--max-time"]),
        (["train", "--preset", "nope"], ["unknown preset 'nope'"]),
        (
            ["train", "--data", str(tmp_path / "missing"), "--steps", "1"],
            ["no such file or directory"],
        ),
        (["train", "--resume", str(tmp_path)], ["no config.json"]),
        (
            ["train", "--label-smoothing", "0.9", "--loss", "hinge"],
            ["applies to minimax, ns and lsgan"],
        ),
        (["train", "--r2", "-0.1"], ["--r2 -0.1: expected a non-negative number"]),
        (["train", "--g-depth", "-1"], ["--g-depth -1: expected 0 (DCGAN) or more"]),
        (["train", "--d-depth", "-2"], ["--d-depth -2: expected 0 (DCGAN) or more"]),
    ]
    for argv, fragments in cases:
        one_line_error(capsys, argv, *fragments)
    assert not (tmp_path / "x.png").exists()


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = "/tmp/fashiongan-pwned-marker"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"version": "0", "config": {}, "step": 0, "G": Exploit()}, f)
    torch.save({"G": Exploit(), "version": "0", "config": {}, "step": 0}, tmp_path / "evil2.pt")
    for path in (evil, tmp_path / "evil2.pt"):
        one_line_error(
            capsys,
            ["generate", str(path), "--out", str(tmp_path / "o.png")],
            "refused to load" if path.name == "evil2.pt" else "checkpoint",
        )
    assert not os.path.exists(MARKER)


def test_checkpoint_of_another_architecture(runs, tmp_path, capsys):
    state = torch.load(runs / "cond" / "checkpoints" / "final.pt", weights_only=True)
    state["config"]["model"]["width"] = 0.5
    torch.save(state, tmp_path / "wide.pt")
    one_line_error(
        capsys,
        ["generate", str(tmp_path / "wide.pt"), "--out", str(tmp_path / "o.png")],
        "weights do not fit model dcgan28",
        "width=0.5",
        "shapes differ: fc.weight expected ",
        ", found ",
    )


def test_unwritable_output_is_one_line(runs, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a file as a parent
            target = str(tmp_path / "a-file" / "x.npz")
            (tmp_path / "a-file").write_text("")
        else:
            target = str(locked / "x.npz")
        one_line_error(capsys, ["generate", str(runs / "cond"), "--out", target], "cannot write")
        one_line_error(capsys, ["train", "--out", target + "-run", "--steps", "1"], "error")
    finally:
        locked.chmod(0o700)


def test_python_dash_m_entry_point(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fashiongan",
            "generate",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("ema", [True, False])
def test_export_safetensors_loads_back_to_the_same_samples(runs, tmp_path, capsys, ema):
    from safetensors import safe_open

    out = tmp_path / "g.safetensors"
    flag = "--ema" if ema else "--no-ema"
    assert main(["export", str(runs / "cond"), "--out", str(out), flag]) == 0
    assert f"{'EMA' if ema else 'raw'} generator of step" in capsys.readouterr().out
    with safe_open(out, framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "fashiongan-generator" and meta["ema"] == str(ema).lower()
    assert json.loads(meta["class_names"])[7] == "sneaker"
    original, exported = load_generator(runs / "cond", ema=ema), load_generator(out)
    assert exported.step == original.step and exported.class_names == original.class_names
    assert np.array_equal(original.sample(30, seed=1), exported.sample(30, seed=1))
    grid = tmp_path / "grid.png"
    assert main(["generate", str(out), "--per-class", "2", "--out", str(grid)]) == 0
    assert Image.open(grid).height > 10 * 28


def test_export_and_safetensors_bad_input(runs, tmp_path, capsys):
    one_line_error(
        capsys,
        ["export", str(runs / "cond"), "--out", str(tmp_path / "g.pt")],
        "expected a file name ending in .safetensors",
    )
    assert not (tmp_path / "g.pt").exists()
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    one_line_error(
        capsys, ["generate", str(junk), "--out", str(tmp_path / "o.png")], "not a readable"
    )
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    one_line_error(
        capsys,
        ["generate", str(foreign), "--out", str(tmp_path / "o.png")],
        "without fashiongan's metadata",
    )
    assert not (tmp_path / "o.png").exists()


def test_every_command_prints_its_help(capsys):
    """argparse formats help texts with %: a stray percent sign in one breaks --help."""
    from fashiongan.cli import COMMANDS

    for name in [None, *COMMANDS]:
        assert main(([name] if name else []) + ["--help"]) == 0, name
        assert "usage: fashiongan" in capsys.readouterr().out
