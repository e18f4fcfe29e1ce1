"""Time `fashiongan evaluate` of a run: once with an empty cache (reference features, floors and
the near-copy threshold computed) and once warm (the everyday case), printing per-metric times.
Usage: python benchmarks/evaluate_speed.py RUN_DIR [--num-samples 10000] [--metrics all]"""

import argparse
import tempfile
import time

from fashiongan.metrics.evaluate import evaluate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--metrics", help="comma-separated (default: the evaluate default)")
    args = ap.parse_args()
    metrics = args.metrics.split(",") if args.metrics else None
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        for label in ("cold cache", "warm cache"):
            lines: list[str] = []
            start = time.perf_counter()
            evaluate(
                args.run,
                metrics=metrics,
                num_samples=args.num_samples,
                cache_dir=cache,
                out=out,
                log=lines.append,
            )
            total = time.perf_counter() - start
            stages = [s.strip() for s in lines if s.startswith("  ") and s.rstrip().endswith(" s")]
            print(f"{label}: {total:.1f} s for {args.num_samples} samples ({'; '.join(stages)})")


if __name__ == "__main__":
    main()
