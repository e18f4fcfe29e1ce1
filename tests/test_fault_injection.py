"""kill -9 a real training run at chosen and random moments, resume it each time, and check
that it continues from the last complete checkpoint, that no file is ever corrupt, that
metrics.jsonl has every step once, and that the final weights equal an uninterrupted run's."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from fashiongan.checkpoint import load_checkpoint
from fashiongan.errors import FashionGANError
from fashiongan.training.monitor import read_metrics
from test_training import assert_same, weights

STEPS = 60
FLAGS = [
    "--width", "0.25", "--z-dim", "16", "--batch-size", "16", "--epochs", "0",
    "--steps", str(STEPS), "--ckpt-every", "4", "--log-every", "1", "--sample-every", "6",
    "--ema-kimg", "0.1", "--keep", "2", "--grid-seeds", "3", "--no-progress",
]  # fmt: skip


def launch(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "fashiongan", "train", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def temp_files(run: Path, sub: str) -> list[Path]:
    return list((run / sub).glob(".*.tmp")) if (run / sub).is_dir() else []


def last_step(run: Path) -> int:
    path = run / "metrics.jsonl"
    rows = read_metrics(path) if path.exists() else []
    return rows[-1]["step"] if rows else 0


def kill_when(
    proc: subprocess.Popen, run: Path, trigger: tuple[str, int | str], stale: set[Path]
) -> str:
    """Poll until `trigger` holds, then SIGKILL. ("step", n): metrics.jsonl reached step n.
    ("writing", sub): a temp file is being written in run/sub; the process is stopped first,
    and killed only if the temp file is still there, so the kill lands inside the write.
    Temp files left by an earlier kill (`stale`) do not count. Returns 'killed', or
    'finished' if the run ended first."""
    kind, arg = trigger
    while proc.poll() is None:
        if kind == "step" and last_step(run) >= arg:
            proc.kill()
            proc.wait()
            return "killed"
        if kind == "writing" and set(temp_files(run, arg)) - stale:
            os.kill(proc.pid, signal.SIGSTOP)
            if set(temp_files(run, arg)) - stale:
                proc.kill()
                proc.wait()
                return "killed"
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.0005)
    return "finished"


def newest_complete_step(run: Path) -> int:
    steps = []
    for path in (run / "checkpoints").glob("*.pt"):
        try:
            steps.append(load_checkpoint(path)["step"])
        except FashionGANError:
            pass
    return max(steps, default=0)


def check_files(run: Path) -> None:
    """Everything but a write's temp file is complete: checkpoints load, grids decode,
    metrics.jsonl parses up to at most one torn last line, its steps strictly increase."""
    for path in (run / "checkpoints").glob("*.pt"):
        load_checkpoint(path)
    for path in (run / "samples").glob("*.png"):
        with Image.open(path) as im:
            im.load()
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    assert all(line.endswith("\n") for line in lines[:-1])  # only the last may be torn
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == sorted(set(steps))


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(idx_dir, tmp_path):
    data = ["--data", str(idx_dir)]
    reference = launch([*data, *FLAGS, "--out", str(tmp_path / "reference")])
    assert reference.wait() == 0, reference.stdout.read()

    run = tmp_path / "run"
    rng = random.Random(0)
    triggers = [
        ("step", 1),  # before the first checkpoint
        ("writing", "checkpoints"),  # inside a checkpoint write
        ("step", rng.randrange(9, 20)),
        ("writing", "samples"),  # inside a sample-grid write
        ("step", rng.randrange(25, 40)),
        ("writing", "checkpoints"),
        ("step", rng.randrange(45, STEPS)),
    ]
    kills, stale = [], set()
    proc = launch([*data, *FLAGS, "--out", str(run)])
    for trigger in triggers:
        outcome = kill_when(proc, run, trigger, stale)
        output = proc.stdout.read()
        assert outcome == "killed", f"{trigger}: the run ended first\n{output}"
        kills.append((trigger, last_step(run)))
        check_files(run)
        stale = set(temp_files(run, "checkpoints") + temp_files(run, "samples"))
        expected = newest_complete_step(run)
        proc = launch(["--resume", str(run), "--no-progress"])
        head = proc.stdout.readline()  # the opening line says where it resumed (an empty run
        if "resumed at step" not in head:  # says so in a line of its own first)
            head += proc.stdout.readline()
        resumed = "starting the run from step 0" if expected == 0 else f"resumed at step {expected}"
        assert resumed in head, (trigger, head)
    assert proc.wait() == 0, proc.stdout.read()
    assert len(kills) >= 5

    check_files(run)
    assert not temp_files(run, "checkpoints") and not temp_files(run, "samples")
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1)), steps
    final = load_checkpoint(run / "checkpoints" / "final.pt")
    assert final["step"] == STEPS
    assert_same(
        weights(tmp_path / "reference" / "checkpoints" / "final.pt"),
        weights(run / "checkpoints" / "final.pt"),
    )
    ref_opt = load_checkpoint(tmp_path / "reference" / "checkpoints" / "final.pt")["opt_G"]
    for k, v in ref_opt["state"].items():
        assert torch.equal(v["exp_avg"], final["opt_G"]["state"][k]["exp_avg"])


def test_sigterm_and_ctrl_c_finish_the_step_checkpoint_and_exit_0(idx_dir, tmp_path):
    flags = [f if f != str(STEPS) else "100000" for f in FLAGS]  # a run that would go on
    for sig in (signal.SIGTERM, signal.SIGINT):
        run = tmp_path / sig.name
        proc = launch(["--data", str(idx_dir), *flags, "--out", str(run)])
        while last_step(run) < 3 and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
        assert f"{sig.name}: finishing this step and writing a checkpoint" in output
        assert f"interrupted: continue with  fashiongan train --resume {run}" in output
        state = load_checkpoint(run / "checkpoints" / "latest.pt")
        assert state["step"] == last_step(run) >= 3
        assert not (run / "checkpoints" / "final.pt").exists()


def test_second_ctrl_c_aborts_at_once(idx_dir, tmp_path):
    flags = [f if f != str(STEPS) else "100000" for f in FLAGS]
    flags[flags.index("--ckpt-every") + 1] = "1"  # keep it busy writing checkpoints
    run = tmp_path / "run"
    proc = launch(["--data", str(idx_dir), *flags, "--out", str(run)])
    while last_step(run) < 3 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    seen = ""
    while "finishing this step" not in seen:  # the first one has been handled
        seen += proc.stdout.readline()
    proc.send_signal(signal.SIGINT)  # while it writes the grid, plots and checkpoint
    output = seen + proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output
    assert "fashiongan train: aborted" in output and "Traceback" not in output
    for path in (run / "checkpoints").glob("*.pt"):  # whatever was written is whole
        load_checkpoint(path)
