"""The GPU path, measured: what each speed-up contributes to the default preset's training step,
whether the fast paths compute what the plain one does, and the time of a whole epoch.

    python benchmarks/gpu.py [--data DIR] [--steps 600] [--repeats 3] [--json out.json]
        [--only variants,checks,epoch,generate]

- variants: `Trainer.train_step` of the default preset (batch 64 unless a row says otherwise),
  each row adding one thing to the row above it; median img/s over --repeats windows of --steps
  steps after 64 warm-up steps (a CUDA graph is recorded during those), synchronised at both
  ends of a window. Images/s counts real images D sees, as the CPU table does.
- checks: from one state and one batch, the fast paths' gradients against float32 eager
  (relative error ‖a − b‖/‖b‖ over D's and G's gradients), and 20 graphed steps against 20 eager
  steps on the same draws (the weights after them).
- epoch: `fashiongan train --epochs 5` with the fastest settings; the epoch lines' seconds.
- generate: samples/s of G_ema at batch 1,000 (no grad), fp32 and bf16.
Needs a CUDA device; nothing else should run on it meanwhile.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from fashiongan.config import RunConfig
from fashiongan.training.loop import STAT_KEYS, Trainer

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, for checks

# (label, settings): each row adds its settings to everything above it
LADDER = [
    ("fp32 eager, foreach Adam, NCHW", dict(precision="fp32", adam="foreach", channels_last=False)),
    ("+ TF32", dict(precision="tf32")),
    ("+ channels_last", dict(channels_last=True)),
    ("+ fused Adam", dict(adam="fused")),
    ("+ bf16 autocast", dict(precision="bf16")),
]


def make_trainer(root: Path, data: str | None, batch: int = 64, **train) -> Trainer:
    cfg = RunConfig()
    cfg.data.data = data
    cfg.train.device = "cuda"
    cfg.train.epochs, cfg.train.steps = 0, 10**9
    cfg.train.batch_size = batch
    cfg.log.progress = False
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return Trainer(cfg, root)


def img_per_s(trainer: Trainer, steps: int, repeats: int) -> float:
    for _ in range(64):
        trainer.train_step()
    rates = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start, nimg = time.perf_counter(), trainer.nimg
        for _ in range(steps):
            trainer.train_step()
        torch.cuda.synchronize()
        rates.append((trainer.nimg - nimg) / (time.perf_counter() - start))
    assert torch.isfinite(trainer.stats).all(), "a statistic became NaN/Inf"
    return statistics.median(rates)


def replay_only(trainer: Trainer, n: int = 300) -> float:
    """Steps/s of replaying the recorded step alone (no draws, no input copies)."""
    graph = trainer.update.graph.graphs[False]
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        graph.replay()
    torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def kernels_per_step(trainer: Trainer) -> int:
    """GPU kernels one eager step (without R1) launches, by the profiler."""
    from torch.profiler import ProfilerActivity, profile

    while trainer.step % trainer.cfg.loss.r1_every == 0:
        trainer.train_step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        trainer.train_step()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA")


def variants(root: Path, data, steps: int, repeats: int) -> list[dict]:
    rows, settings = [], {}
    for label, extra in LADDER:
        settings.update(extra)
        rows.append(dict(label=label, batch=64, **settings))
    best = dict(settings)
    rows.append(dict(label="+ torch.compile (no graph)", batch=64, **best, compile=True))
    for precision in ("tf32", "bf16"):
        graphed = {**best, "precision": precision, "cuda_graph": True}
        rows.append(dict(label=f"+ CUDA graph ({precision})", batch=64, **graphed))
        rows.append(
            dict(label=f"+ CUDA graph + compile ({precision})", batch=64, **graphed, compile=True)
        )
    for batch in (256, 1024):
        rows.append(dict(label=f"batch {batch}, eager", batch=batch, **best))
        rows.append(dict(label=f"batch {batch}, CUDA graph", batch=batch, **best, cuda_graph=True))
    for row in rows:
        train = {k: v for k, v in row.items() if k not in ("label", "batch")}
        try:
            trainer = make_trainer(root / "v", data, row["batch"], **train)
            row["img_per_s"] = round(img_per_s(trainer, steps, repeats))
            if trainer.update.graph is not None:
                row["replay_only_img_per_s"] = round(replay_only(trainer) * row["batch"])
            elif row["batch"] == 64 and not row.get("compile"):
                row["kernels_per_step"] = kernels_per_step(trainer)
        except Exception as e:  # a variant that fails is a result too
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()
    return rows


def flat_grads(trainer: Trainer) -> torch.Tensor:
    return torch.cat(
        [p.grad.flatten().float() for net in (trainer.D, trainer.G) for p in net.parameters()]
    )


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def one_step_grads(root: Path, data, **train) -> torch.Tensor:
    """Gradients of D (with R1) and G after one step from the seed's initial state, with the
    learning rate 0 so the weights G's step sees are D's initial ones in every variant."""
    t = make_trainer(root / "g", data, lr_g=1e-30, lr_d=1e-30, **train)
    t.update.maths(t.update.draw(), True, 1, 0.0)
    return flat_grads(t)


def checks(root: Path, data) -> dict:
    out = {}
    ref = one_step_grads(root, data, precision="fp32", adam="foreach", channels_last=False)
    for name, train in [
        ("tf32", dict(precision="tf32")),
        ("bf16", dict(precision="bf16")),
        ("channels_last", dict(precision="fp32", channels_last=True)),
    ]:
        out[f"grad_rel_err_{name}"] = rel(one_step_grads(root, data, **train), ref)
    # 40 steps (R1 at 0, 16, 32; each kind recorded at its 3rd step) eager twice and graphed,
    # deterministic kernels: a GAN's Adam (β1 = 0) turns rounding noise into visible drift, so
    # only deterministic runs can show that the replayed step is the eager step
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    weights = {}
    for name, graphed in (("eager", False), ("eager_again", False), ("graph", True)):
        t = make_trainer(root / "s", data, precision="fp32", cuda_graph=graphed)
        for _ in range(40):
            t.train_step()
        weights[name] = torch.cat(
            [p.detach().flatten() for net in (t.D, t.G) for p in net.parameters()]
            + [p.flatten() for p in t.ema.G_ema.parameters()]
        )
        out[f"stat_sums_{name}"] = dict(zip(STAT_KEYS, [round(v, 6) for v in t.stats.tolist()]))
    torch.use_deterministic_algorithms(False)
    for name in ("eager_again", "graph"):
        out[f"weights_rel_err_{name}_vs_eager_40_steps"] = rel(weights[name], weights["eager"])
    print(json.dumps(out), flush=True)
    return out


def epoch(root: Path, data, flags: list[str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "fashiongan",
        "train",
        "--device",
        "cuda",
        "--epochs",
        "5",
        "--out",
        str(root / "epoch"),
        "--no-progress",
        *flags,
    ]
    if data:
        cmd += ["--data", data]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    pattern = r"^epoch .*\| ([\d.]+) s(?: \(([\d.]+) s of it writing\))?$"
    lines = re.findall(pattern, proc.stdout, re.M)
    out = {
        "flags": flags,
        "epoch_seconds": [float(a) for a, _ in lines],
        "writing_seconds": [float(b or 0) for _, b in lines],
        "wall_s": round(wall, 1),
        "rc": proc.returncode,
    }
    if proc.returncode:
        out["stderr"] = proc.stderr[-2000:]
    print(json.dumps(out), flush=True)
    return out


def generate(root: Path, data) -> dict:
    t = make_trainer(root / "gen", data)
    G = t.ema.G_ema.eval()
    out = {}
    for precision in ("fp32", "bf16"):
        z = torch.randn(1000, 100, device="cuda")
        y = torch.randint(10, (1000,), device="cuda")
        ctx = (
            torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else torch.no_grad()
        )
        with torch.no_grad(), ctx:
            for _ in range(10):
                G(z, y)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(200):
                G(z, y)
            torch.cuda.synchronize()
        out[f"generate_{precision}_img_per_s"] = round(200_000 / (time.perf_counter() - start))
    print(json.dumps(out), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=os.environ.get("FASHIONGAN_DATA"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--only", default="variants,checks,epoch,generate")
    ap.add_argument("--epoch-flags", default="--cuda-graph --compile --precision bf16")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA device", file=sys.stderr)
        return 2
    parts = args.only.split(",")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "checks" in parts:
            result["checks"] = checks(root, args.data)
        if "variants" in parts:
            result["variants"] = variants(root, args.data, args.steps, args.repeats)
        if "generate" in parts:
            result["generate"] = generate(root, args.data)
        if "epoch" in parts:
            result["epoch"] = epoch(root, args.data, args.epoch_flags.split())
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for row in result.get("variants", []):
        rate = row.get("img_per_s", row.get("error"))
        print(f"{row['label']:<40} batch {row['batch']:>5}  {rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
