"""Hostile inputs found by trying the tool as a hostile user would: each gets a one-line error
(exit 2) or the right result, and none loses data. The fixes are rules, tested here through
the cases that exposed them: one finiteness/range rule for every numeric setting, one process
per run folder, no output replacing a file of another kind, leftovers of killed writes removed,
output locations checked before the work."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_images
from fashiongan.checkpoint import load_checkpoint, resolve_checkpoint
from fashiongan.cli import main
from fashiongan.fileio import DIR_MODE, FILE_MODE, DirectoryLock
from fashiongan.metrics.sources import read_image_set
from fashiongan.sampling import load_generator
from test_evaluate import tiny_evaluator  # noqa: F401 - fixture
from test_sampling_cli import TINY, one_line_error


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fashiongan.data.idx import write_idx

    root = tmp_path_factory.mktemp("data")
    images, labels = synthetic_images(20)
    write_idx(root / "train-images-idx3-ubyte.gz", images)
    write_idx(root / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return root


def _train(data, out, *extra) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), *TINY, *extra]


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(_train(data, out, "--steps", "4", "--ckpt-every", "2")) == 0
    return out


# --- one rule for every numeric setting --------------------------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--kimg", "nan"], "--kimg nan: expected a finite number"),
        (["--kimg", "inf"], "--kimg inf: expected a finite number"),
        (["--max-time", "nan"], "--max-time 'nan': expected a finite"),
        (["--max-time", "inf"], "--max-time 'inf': expected a finite"),
        (["--lr-g", "inf"], "--lr-g inf: expected a finite number"),
        (["--betas", "0", "nan"], "--betas 0.0 nan: expected a finite number"),
        (["--seed", str(2**63)], f"--seed {2**63}: expected 0..{2**63 - 1}"),
        (["--seed", "-1"], "--seed -1: expected 0.."),
        (["--batch-size", str(2**64)], "--batch-size"),
    ],
)
def test_numeric_settings_are_finite_and_in_range(data, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    one_line_error(capsys, _train(data, out, "--steps", "1", *flags), message)
    assert not out.exists()  # refused before the run folder is made


def test_a_saved_config_with_nan_is_refused_too(tmp_path):
    from fashiongan.config import RunConfig
    from fashiongan.errors import FashionGANError
    from fashiongan.training.loop import train

    cfg = RunConfig()
    cfg.train.lr_d = float("nan")
    with pytest.raises(FashionGANError, match="--lr-d nan"):
        train(cfg, tmp_path / "api")
    assert not (tmp_path / "api").exists()


def test_generate_seed_and_size_limits(run, tmp_path, capsys):
    out = tmp_path / "x.npz"
    one_line_error(capsys, ["generate", str(run), "--seed", str(2**63), "--out", str(out)],
                   "--seed")  # fmt: skip
    one_line_error(capsys, ["generate", str(run), "--num-samples", "1000000000", "--out",
                            str(out)], "GB in memory", "in parts")  # fmt: skip
    assert not out.exists()


# --- data sets ---------------------------------------------------------------------------


def test_npz_labels_as_class_names_fractions_and_junk(tmp_path, capsys):
    images = np.zeros((4, 28, 28), np.uint8)
    np.savez(tmp_path / "names.npz", images=images, labels=["sneaker", "Bag", "7", "ankle boot"])
    assert read_image_set(str(tmp_path / "names.npz")).labels.tolist() == [7, 8, 7, 9]
    np.savez(tmp_path / "whole.npz", images=images, labels=np.array([1.0, 2.0, 3.0, 4.0]))
    assert read_image_set(str(tmp_path / "whole.npz")).labels.tolist() == [1, 2, 3, 4]
    np.savez(tmp_path / "frac.npz", images=images, labels=np.array([1.0, 2.5, 3.0, 4.0]))
    np.savez(tmp_path / "unknown.npz", images=images, labels=["sneaker", "hat", "bag", "bag"])
    for name, message in (("frac", "whole class ids, found 2.5 at index 1"),
                          ("unknown", "unknown class 'hat'")):  # fmt: skip
        one_line_error(capsys, ["evaluate", str(tmp_path / f"{name}.npz")], message)


def _png_folder(root, sub, n=3, ext=".png"):
    (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((28, 28), 10 * i, np.uint8)).save(root / sub / f"{i}{ext}")


def test_png_folders_are_named_classes_and_any_case(tmp_path, capsys):
    _png_folder(tmp_path / "upper", "7_sneaker", ext=".PNG")
    _png_folder(tmp_path / "upper", "bag", ext=".png")
    got = read_image_set(str(tmp_path / "upper"))
    assert sorted(got.labels.tolist()) == [7, 7, 7, 8, 8, 8]  # .PNG files are read too
    _png_folder(tmp_path / "chunks", "00000")
    _png_folder(tmp_path / "chunks", "00001")
    one_line_error(capsys, ["evaluate", str(tmp_path / "chunks")], "'00000' is not a class id")
    _png_folder(tmp_path / "clash", "3_sneaker")
    one_line_error(capsys, ["evaluate", str(tmp_path / "clash")],
                   "id 3 is 'dress' but the rest names 'sneaker'")  # fmt: skip


def test_too_few_images_is_a_result_not_a_traceback(tiny_evaluator, tmp_path, capsys):  # noqa: F811
    ev_dir, ev_data = tiny_evaluator
    np.savez(tmp_path / "five.npz", images=synthetic_images(1)[0][:5], labels=np.arange(5))
    argv = ["evaluate", str(tmp_path / "five.npz"), "--evaluator", str(ev_dir), "--data",
            str(ev_data), "--memorization-samples", "5"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "left out for 5 images: is (needs 10), prdc (needs 6)" in out
    one_line_error(capsys, [*argv, "--metrics", "is"], "needs at least 10 images, got 5")


# --- run folders -------------------------------------------------------------------------


def test_a_new_run_refuses_a_folder_with_an_earlier_runs_files(data, tmp_path, capsys):
    out = tmp_path / "killed"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 50}\n')  # killed before its first checkpoint
    one_line_error(capsys, _train(data, out, "--steps", "1"), "metrics.jsonl", "no checkpoint")
    assert (out / "metrics.jsonl").read_text() == '{"step": 50}\n'


def test_a_file_is_not_a_run_folder(data, tmp_path, capsys):
    (tmp_path / "f").write_text("mine")
    one_line_error(capsys, _train(data, tmp_path / "f", "--steps", "1"), "is a file")
    assert (tmp_path / "f").read_text() == "mine"


def test_one_process_per_run_folder(data, tmp_path, capsys):
    out = tmp_path / "busy"
    with DirectoryLock(out):  # another process's run (flock: a second open conflicts too)
        one_line_error(capsys, _train(data, out, "--steps", "1"), "is in use by another")
        assert not (out / "checkpoints").exists()
    assert main(_train(data, out, "--steps", "1")) == 0  # free again


def test_two_processes_on_one_folder_one_refused(data, tmp_path):
    out = tmp_path / "race"
    argv = [sys.executable, "-m", "fashiongan", *_train(data, out, "--steps", "30")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(e for c, e in results if c == 2)
    assert "is in use by another" in err or "already holds a run" in err, err
    steps = [r for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps))  # one writer: no interleaved duplicate rows


def test_resume_with_the_budget_spent_trains_nothing(run, capsys):
    before = load_checkpoint(resolve_checkpoint(run))["step"]
    log = (run / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(run), "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "nothing to train: the steps budget is already reached at step 4" in out
    assert "img/s" not in out
    assert load_checkpoint(resolve_checkpoint(run))["step"] == before
    assert (run / "metrics.jsonl").read_text() == log


def test_a_resumed_run_reports_its_own_speed(data, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_train(data, out, "--steps", "3")) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--steps", "5"]) == 0
    printed = capsys.readouterr().out
    assert "at step 5" in printed and "this invocation trained 0.0 kimg" in printed  # 32 images
    assert "img/s in this run" in printed


# --- outputs -----------------------------------------------------------------------------


def test_generate_never_replaces_a_file_of_another_kind(run, tmp_path, capsys):
    ckpt = run / "checkpoints" / "latest.pt"
    before = ckpt.read_bytes()
    one_line_error(capsys, ["generate", str(run), "--format", "npz", "--out", str(ckpt)],
                   "is not a .npz file", "--force")  # fmt: skip
    assert ckpt.read_bytes() == before
    one_line_error(capsys, ["generate", str(run), "--out", str(run / "checkpoints"),
                            "--format", "npz"], "is a directory")  # fmt: skip
    target = tmp_path / "old.pt"
    target.write_bytes(b"mine")
    assert main(["generate", str(run), "--format", "npz", "--out", str(target), "--force"]) == 0
    assert target.read_bytes()[:2] == b"PK"  # replaced as asked
    again = tmp_path / "s.npz"
    assert main(["generate", str(run), "--out", str(again)]) == 0
    assert main(["generate", str(run), "--out", str(again), "--seed", "1"]) == 0  # same kind


def test_leftovers_of_a_killed_write_are_removed(run, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_dir = tmp_path / f".pngs.{dead.pid}.abc123"
    stale_dir.mkdir()
    (stale_dir / "0_x").mkdir()
    stale_file = tmp_path / f".s.npz.{dead.pid}.zz.tmp"
    stale_file.write_bytes(b"half")
    live = tmp_path / f".pngs.{os.getpid()}.keep"  # a live writer's temp stays
    live.mkdir()
    assert main(["generate", str(run), "--format", "pngs", "--out", str(tmp_path / "pngs")]) == 0
    assert main(["generate", str(run), "--out", str(tmp_path / "s.npz")]) == 0
    assert not stale_dir.exists() and not stale_file.exists() and live.exists()


def test_outputs_get_the_usual_file_mode(run, tmp_path):
    out = tmp_path / "s.npz"
    assert main(["generate", str(run), "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == FILE_MODE
    pngs = tmp_path / "pngs"
    assert main(["generate", str(run), "--format", "pngs", "--out", str(pngs)]) == 0
    assert pngs.stat().st_mode & 0o777 == DIR_MODE
    assert all(p.stat().st_mode & 0o777 == FILE_MODE for p in pngs.rglob("*.png"))


def test_evaluate_checks_its_out_before_the_work(run, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(capsys, ["evaluate", str(run), "--out", str(blocker / "eval")],
                   f"--out {blocker / 'eval'}: cannot write there")  # fmt: skip


def test_generate_samples_the_state_resume_continues_from(run, tmp_path):
    """kill -9 between a save's numbered checkpoint and its latest.pt: both must pick the
    numbered one, the newer."""
    ckpt = run / "checkpoints"
    newest = max(ckpt.glob("ckpt-*.pt"))
    older = sorted(ckpt.glob("ckpt-*.pt"))[-2]
    saved = (ckpt / "latest.pt").read_bytes()
    try:
        (ckpt / "latest.pt").write_bytes(older.read_bytes())
        os.utime(ckpt / "latest.pt", ns=(newest.stat().st_mtime_ns - 10**9,) * 2)
        final = ckpt / "final.pt"
        os.utime(final, ns=(newest.stat().st_mtime_ns - 2 * 10**9,) * 2)
        assert load_generator(run).step == load_checkpoint(newest)["step"] == 4
        assert resolve_checkpoint(run) == newest
    finally:
        (ckpt / "latest.pt").write_bytes(saved)
        os.utime(ckpt / "final.pt")


def test_nonfinite_learning_rate_points_nowhere_empty(data, tmp_path, capsys):
    """`--lr-g inf` used to fail mid-run and name an empty 'last good checkpoint' folder."""
    out = tmp_path / "inf"
    one_line_error(capsys, _train(data, out, "--steps", "2", "--lr-g", "inf"), "--lr-g inf")
    assert not out.exists()


def test_checkpoint_loads_still_need_no_pickle(run):
    assert torch.load(resolve_checkpoint(run), weights_only=True)["step"] == 4
