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
import statistics
import tempfile
import time
from pathlib import Path

from fashiongan.cli import apply_setting
from fashiongan.config import from_dict, load_preset
from fashiongan.errors import FashionGANError
from fashiongan.training.loop import Trainer


def measure(
    preset: str,
    label: str,
    channels_last: bool,
    compile: bool,
    warm: int,
    reuse: bool = True,
    variant: str = "",
) -> float:
    cfg = from_dict(load_preset(preset))
    cfg.train.epochs, cfg.train.steps, cfg.log.progress = 0, 10**9, False
    cfg.train.channels_last, cfg.train.compile = channels_last, compile
    cfg.train.reuse_fakes = reuse
    for setting in filter(None, variant.split(",")):
        key, _, text = setting.partition("=")
        try:
            apply_setting(cfg, key, text)
        except FashionGANError as e:
            raise SystemExit(f"--variant {variant!r}: {e}") from None
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
    return img_per_s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--variant)")
    args = p.parse_args()
    if args.variant:
        variants = ["", *args.variant]
        speeds: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for v in variants:
                label = f"round {r + 1}, {v or args.preset}"
                speeds[v].append(measure(args.preset, label, True, False, 10, variant=v))
        for v in variants:
            runs = ", ".join(f"{x:.0f}" for x in speeds[v])
            print(f"{v or args.preset}: median {statistics.median(speeds[v]):.0f} img/s ({runs})")
        return 0
    measure(args.preset, "eager, NCHW", False, False, 10)
    measure(args.preset, "eager, channels-last", True, False, 10)
    measure(args.preset, "eager, channels-last, --no-reuse-fakes", True, False, 10, reuse=False)
    measure(args.preset, "torch.compile, channels-last", True, True, 15)
    measure(args.preset, "eager, NCHW again (drift check)", False, False, 10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
