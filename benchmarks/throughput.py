"""Throughput of every preset — training, generation and evaluation — next to what this machine
can attain, with FLOPs counted by torch.utils.flop_counter.

    python benchmarks/throughput.py [--presets default,cdcgan-bce] [--repeats 3]
        [--json out.json] [--md table.md] [--skip-evaluate]
    python benchmarks/throughput.py --ab /tmp/before/src [--rounds 4] [--presets ...]

--ab SRC: training throughput of this tree against another source tree (e.g. a `git worktree`
of the commit before a change), each preset measured in fresh processes taking turns, A B A B
..., so both see the same machine at the same time; prints the medians and their ratio.

- attainable: the best of a 2048² fp32 matmul and a 64→128-channel 4×4 stride-2 convolution on
  a 256×64×14×14 batch, timed here, now (GFLOP/s).
- train: `Trainer.train_step` after warm-up steps, median over --repeats windows; FLOPs per step
  counted once with FlopCounterMode (convolutions, transposed convolutions and matmuls, forward
  and backward; elementwise work such as batch norm is not counted, so GFLOP/s is a floor).
- generate: G_ema-style sampling in eval mode at batch 1,000 under no_grad (median of repeats).
- evaluate: `fashiongan evaluate` of 10,000 samples of a short default run, the default (cheap)
  metrics, reference features cached (the everyday case), median of repeats.
Nothing else should run on the machine meanwhile.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fashiongan.config import from_dict, load_preset, preset_names
from fashiongan.training.loop import Trainer


def timed(fn, repeats: int) -> float:
    """Median seconds of fn() over repeats, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def attainable_gflops(repeats: int) -> dict:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    mm = 2 * 2048**3 / timed(lambda: [a @ b for _ in range(5)], repeats) * 5 / 1e9
    x, w = torch.randn(256, 64, 14, 14), torch.randn(128, 64, 4, 4)
    conv_flops = 2 * 256 * 128 * 7 * 7 * 64 * 16
    conv = (
        conv_flops
        / timed(lambda: [F.conv2d(x, w, stride=2, padding=1) for _ in range(5)], repeats)
        * 5
        / 1e9
    )
    return {
        "matmul_gflops": round(mm, 1),
        "conv_gflops": round(conv, 1),
        "attainable_gflops": round(max(mm, conv), 1),
    }


def count_flops(fn) -> int | None:
    """FLOPs of fn(); None where FlopCounterMode cannot trace it (it refuses the autograd.grad
    double backward of WGAN-GP and R1)."""
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    except RuntimeError:
        return None
    return counter.get_total_flops()


def train_throughput(preset: str, root: Path, steps: int, repeats: int) -> dict:
    cfg = from_dict(load_preset(preset))
    cfg.train.epochs, cfg.train.steps = 0, 10**9
    cfg.log.progress = False
    trainer = Trainer(cfg, root / preset)
    trainer.G.train()
    trainer.D.train()
    for _ in range(5):  # warm-up: allocator, oneDNN primitive caches
        trainer.train_step()
    flops = count_flops(lambda: trainer.train_step())
    nimg_per_step = cfg.train.batch_size * cfg.train.d_steps

    def window():
        for _ in range(steps):
            trainer.train_step()
        trainer.stats.tolist()  # the log-tick sync

    seconds = timed(window, repeats) / steps
    return {
        "preset": preset,
        "batch": cfg.train.batch_size,
        "train_img_per_s": round(nimg_per_step / seconds, 1),
        "train_mflop_per_img": None if flops is None else round(flops / nimg_per_step / 1e6, 2),
        "train_gflops": None if flops is None else round(flops / seconds / 1e9, 1),
        "trainer": trainer,
    }


def generate_throughput(trainer: Trainer, repeats: int, n: int = 1000) -> dict:
    gen = trainer.sampler()
    z = torch.randn(n, gen.z_dim)
    y = gen.labels(n=n)
    G = gen.G.eval()
    with torch.no_grad():
        flops = count_flops(lambda: G(z, y))
        seconds = timed(lambda: gen.images(z, y, batch_size=n), repeats)
    return {
        "gen_img_per_s": round(n / seconds, 1),
        "gen_mflop_per_img": round(flops / n / 1e6, 2),
        "gen_gflops": round(flops / seconds / 1e9, 1),
    }


def evaluate_seconds(root: Path, repeats: int) -> float:
    from fashiongan.metrics.evaluate import evaluate
    from fashiongan.training.loop import train

    cfg = from_dict(load_preset("default"))
    cfg.train.epochs, cfg.train.steps, cfg.log.progress = 0, 20, False
    run = train(cfg, root / "eval-run").run_dir
    cache = root / "cache"

    def once():
        evaluate(run, num_samples=10_000, cache_dir=cache, out=root / "eval-out", log=lambda s: 0)

    return timed(once, repeats)  # the warm-up call fills the reference cache


def ab_compare(other_src: str, presets: list[str], rounds: int, steps: int) -> int:
    """Median train img/s of this tree and of `other_src` per preset, in alternating processes."""
    import os
    import subprocess

    here = str(Path(__file__).resolve().parents[1] / "src")
    trees = {"this tree": here, other_src: other_src}
    print(f"| preset | {' | '.join(trees)} | ratio | every process, in turn |")
    print("| --- | ---: | ---: | ---: | --- |")
    for preset in presets:
        rates: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, src in trees.items():
                with tempfile.NamedTemporaryFile(suffix=".json") as out:
                    cmd = [sys.executable, __file__, "--presets", preset, "--skip-evaluate"]
                    cmd += ["--repeats", "3", "--steps", str(steps), "--json", out.name]
                    env = {**os.environ, "PYTHONPATH": src}
                    subprocess.run(cmd, env=env, check=True, capture_output=True)
                    row = json.loads(Path(out.name).read_text())["presets"][0]
                rates[name].append(row["train_img_per_s"])
        medians = [statistics.median(r) for r in rates.values()]
        cells = " | ".join(f"{m:.0f}" for m in medians)
        turns = " / ".join(" ".join(f"{v:.0f}" for v in r) for r in rates.values())
        print(f"| {preset} | {cells} | {medians[0] / medians[1]:.3f} | {turns} |", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ab", metavar="SRC", help="compare training with another source tree")
    p.add_argument("--rounds", type=int, default=4, help="--ab: processes per tree and preset")
    p.add_argument("--presets", help="comma-separated (default: all)")
    p.add_argument("--steps", type=int, default=20, help="train steps per timed window")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-evaluate", action="store_true")
    p.add_argument("--json")
    p.add_argument("--md")
    args = p.parse_args()
    presets = args.presets.split(",") if args.presets else preset_names()
    if args.ab:
        return ab_compare(args.ab, presets, args.rounds, args.steps)
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **attainable_gflops(args.repeats),
        "presets": [],
    }
    peak = result["attainable_gflops"]
    print(f"attainable: {peak} GFLOP/s ({result})", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for preset in presets:
            steps = max(2, args.steps // (8 if preset == "dcgan64" else 1))
            row = train_throughput(preset, root, steps, args.repeats)
            row.update(generate_throughput(row.pop("trainer"), args.repeats))
            row["train_share_of_attainable"] = (
                None if row["train_gflops"] is None else round(row["train_gflops"] / peak, 3)
            )
            row["gen_share_of_attainable"] = round(row["gen_gflops"] / peak, 3)
            result["presets"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if not args.skip_evaluate:
            result["evaluate_10k_seconds"] = round(evaluate_seconds(root, args.repeats), 2)
    lines = [
        f"attainable on this machine: {peak} GFLOP/s (matmul {result['matmul_gflops']}, "
        f"conv {result['conv_gflops']}); torch {result['torch']}, {result['threads']} threads",
        "",
        "| preset | batch | train img/s | train MFLOP/img | train GFLOP/s | % of attainable "
        "| generate img/s | gen MFLOP/img | gen GFLOP/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["presets"]:
        counted = r["train_gflops"] is not None
        lines.append(
            f"| {r['preset']} | {r['batch']} | {r['train_img_per_s']:.0f} | "
            + (
                f"{r['train_mflop_per_img']:.1f} | {r['train_gflops']:.1f} | "
                f"{100 * r['train_share_of_attainable']:.0f}% | "
                if counted
                else "not countable (double backward) | — | — | "
            )
            + f"{r['gen_img_per_s']:.0f} | {r['gen_mflop_per_img']:.2f} | {r['gen_gflops']:.1f} |"
        )
    if "evaluate_10k_seconds" in result:
        lines += [
            "",
            f"evaluate, 10,000 samples, default metrics, warm cache: "
            f"{result['evaluate_10k_seconds']:.1f} s",
        ]
    print("\n".join(lines))
    if args.md:
        Path(args.md).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
