"""Data-parallel training under torchrun: 2 CPU processes (gloo) on the real data set.

The ranks share one state and shard each global batch (see training/distributed.py), so a
2-process run at global batch B computes what one process computes at batch B, up to the
rounding of the gradient all-reduce, and checkpoints move between the two."""

import json
import os
import subprocess
import sys

import pytest
import torch

from fashiongan.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

STEPS = 12


def run(real_data, out, *flags, procs=2, check=True):
    """`fashiongan train` on the real data, under torchrun with `procs` processes (or plain)."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={procs}", "-m", "fashiongan"]  # fmt: skip
    cmd = launcher if procs > 1 else [sys.executable, "-m", "fashiongan"]
    args = ["train", "--data", str(real_data), "--log-every", "1", "--no-progress", *flags]
    if "--resume" not in flags:
        args += ["--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def tensors(path):
    state = load_checkpoint(path)
    out = {f"{part}.{k}": v for part in ("G", "D", "G_ema") for k, v in state[part].items()}
    for part in ("opt_G", "opt_D"):
        for i, s in state[part]["state"].items():
            out.update({f"{part}.{i}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    return out


def test_two_processes_train_as_one_and_write_once(real_data, tmp_path):
    # At the default rates (4e-3 / 2e-3, Adam β1 = 0) the all-reduce's different rounding grows
    # chaotically: measured 5e-4 relative at step 3, up to 22% by step 11. At 1e-4 the runs stay
    # together (losses within 5e-6 over the 12 steps, gradient norms within 2e-3), so the test
    # can hold them to that and catch a mis-sharded batch or an unaveraged gradient.
    slow = ("--steps", str(STEPS), "--lr-g", "1e-4", "--lr-d", "1e-4")
    run(real_data, tmp_path / "one", *slow, "--threads", "1", procs=1)
    out = tmp_path / "two"
    proc = run(real_data, out, *slow, "--sync-bn")
    assert proc.stdout.count("run directory:") == 1  # rank 0 alone reports
    assert "× 2 ranks (torchrun)" in (out / "log.txt").read_text()
    one, two = rows(tmp_path / "one"), rows(out)
    assert [r["step"] for r in two] == list(range(1, STEPS + 1))  # one writer
    assert two[-1]["kimg"] == pytest.approx(STEPS * 64 / 1000)  # --batch-size is global
    for a, b in zip(one, two):
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)
        for key in ("grad_norm_d", "grad_norm_g"):
            assert b[key] == pytest.approx(a[key], rel=2e-2), (a["step"], key)
    png = tmp_path / "g.png"
    gen = subprocess.run(
        [sys.executable, "-m", "fashiongan", "generate", str(out), "--per-class", "2",
         "--out", str(png)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    assert png.stat().st_size > 0


def test_resume_under_ddp_and_across_process_counts(real_data, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run(real_data, whole, "--steps", str(STEPS))
    run(real_data, cut, "--steps", "6", "--ckpt-every", "3")
    run(real_data, cut, "--resume", str(cut), "--steps", str(STEPS))
    a = tensors(whole / "checkpoints" / "final.pt")
    b = tensors(cut / "checkpoints" / "final.pt")
    assert a.keys() == b.keys()
    for k in a:  # gloo's 2-rank sum is deterministic: the resumed run is the same run
        assert torch.equal(a[k], b[k]), k
    # the DDP run goes on in one process, and then in two again
    run(real_data, cut, "--resume", str(cut), "--steps", str(STEPS + 2), procs=1)
    run(real_data, cut, "--resume", str(cut), "--steps", str(STEPS + 4))
    assert [r["step"] for r in rows(cut)] == list(range(1, STEPS + 5))


def test_ddp_refusals_are_one_line_errors(real_data, tmp_path):
    proc = run(real_data, tmp_path / "x", "--steps", "2", "--batch-size", "63", check=False)
    assert proc.returncode != 0
    assert "--batch-size 63 is the global batch and must split evenly over the 2 processes" in (
        proc.stderr
    )
    # each rank says it in one line; torchrun then adds its own report of the failed workers
    assert "fashiongan train: error: --batch-size 63" in proc.stderr
    assert "fashiongan/training" not in proc.stderr  # no traceback from our code
