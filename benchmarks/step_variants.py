"""Train-step throughput of one preset in four execution modes, in one process: eager NCHW,
channels-last (the default), channels-last with a second G forward per step
(--no-reuse-fakes), and torch.compile. Median of 5 windows of 20 steps after warm-up;
the compile line also reports how long its first (compiling) steps took.

    python benchmarks/step_variants.py [--preset default]

Nothing else should run on the machine meanwhile.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fashiongan.config import from_dict, load_preset
from fashiongan.training.loop import Trainer


def measure(
    preset: str, label: str, channels_last: bool, compile: bool, warm: int, reuse: bool = True
) -> None:
    cfg = from_dict(load_preset(preset))
    cfg.train.epochs, cfg.train.steps, cfg.log.progress = 0, 10**9, False
    cfg.train.channels_last, cfg.train.compile = channels_last, compile
    cfg.train.reuse_fakes = reuse
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    args = p.parse_args()
    measure(args.preset, "eager, NCHW", False, False, 10)
    measure(args.preset, "eager, channels-last", True, False, 10)
    measure(args.preset, "eager, channels-last, --no-reuse-fakes", True, False, 10, reuse=False)
    measure(args.preset, "torch.compile, channels-last", True, True, 15)
    measure(args.preset, "eager, NCHW again (drift check)", False, False, 10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
