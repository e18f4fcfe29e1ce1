"""Train-step throughput of one preset in four execution modes, in one process: eager NCHW,
channels-last (the default), channels-last with a second G forward per step
(--no-reuse-fakes), and torch.compile. Median of 5 windows of 20 steps after warm-up;
the compile line also reports how long its first (compiling) steps took.

    python benchmarks/step_variants.py [--preset default]

With --variant, it measures recipe variants instead: the preset and each variant (flags of
`fashiongan train`, comma-separated, e.g. "width=0.75,d_width=0.5"), in --rounds interleaved
rounds so that the machine's drift hits them alike:

    python benchmarks/step_variants.py --variant mbstd=4 --variant width=0.75,d_width=0.5

Nothing else should run on the machine meanwhile.
"""

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

from time_to_quality import parse_set  # beside this file: python puts benchmarks/ on the path

from fashiongan.config import RunConfig, from_dict, load_preset
from fashiongan.training.loop import Trainer


def config(preset: str, variant: str = "", **train) -> RunConfig:
    """The preset with a variant's settings (checked here, before anything is timed) and
    overrides of train fields, set to run steps with nothing else on the clock."""
    cfg = from_dict(load_preset(preset))
    cfg.train.epochs, cfg.train.steps, cfg.log.progress = 0, 10**9, False
    for setting in filter(None, variant.split(",")):
        parse_set(cfg, setting, "--variant")
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


def measure(cfg: RunConfig, label: str, warm: int = 10) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(copy.deepcopy(cfg), Path(tmp))
        start = time.perf_counter()
        for _ in range(warm):
            trainer.train_step()
        warm_s = time.perf_counter() - start
        windows = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(20):
                trainer.train_step()
            trainer.stats.tolist()  # the log-tick sync
            windows.append((time.perf_counter() - start) / 20)
    img_per_s = cfg.train.batch_size * cfg.train.d_steps / statistics.median(windows)
    print(f"{label}: {img_per_s:.0f} img/s (first {warm} steps {warm_s:.1f} s)", flush=True)
    return img_per_s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--variant)")
    args = p.parse_args()
    preset = args.preset
    if args.variant:
        configs = {v or preset: config(preset, v) for v in ["", *args.variant]}
        speeds: dict[str, list[float]] = {name: [] for name in configs}
        for r in range(args.rounds):
            for name, cfg in configs.items():
                speeds[name].append(measure(cfg, f"round {r + 1}, {name}"))
        for name, runs in speeds.items():
            each = ", ".join(f"{x:.0f}" for x in runs)
            print(f"{name}: median {statistics.median(runs):.0f} img/s ({each})")
        return 0
    measure(config(preset, channels_last=False), "eager, NCHW")
    measure(config(preset), "eager, channels-last")
    measure(config(preset, reuse_fakes=False), "eager, channels-last, --no-reuse-fakes")
    measure(config(preset, compile=True), "torch.compile, channels-last", warm=15)
    measure(config(preset, channels_last=False), "eager, NCHW again (drift check)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
