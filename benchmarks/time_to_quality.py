"""Quality against training wall time: train a recipe for a wall-clock budget, stop the clock
to evaluate every --eval-every-s seconds of training, and print the FID / label-accuracy curve
and the first training time each threshold is crossed.

    python benchmarks/time_to_quality.py [--preset default] [--set train.lr_g=4e-4 ...]
        [--budget 600] [--eval-every-s 60] [--eval-samples 10000] [--json out.json]

The clock covers exactly what `fashiongan train` spends per step (data, D and G updates, EMA,
the log-tick sync); evaluation, sample grids and checkpoints are off the clock, so the curve is
the recipe's, not the logging's. Nothing else should run on the machine meanwhile.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from fashiongan.cli import apply_setting
from fashiongan.config import RunConfig, from_dict, load_preset
from fashiongan.data.datasets import default_cache_dir
from fashiongan.errors import FashionGANError
from fashiongan.training.loop import STAT_KEYS, Trainer
from fashiongan.training.periodic_eval import PeriodicEval

# the evaluator-FID of the reference samples (../shared/reference, 10,000 images each, vs the
# test split): the lowest of the three, measured with `fashiongan evaluate FILE --metrics fid`
REFERENCE_FID = 4.963
REAL_LABEL_ACCURACY = 0.9359  # the evaluator's accuracy on the real test split


def parse_set(cfg: RunConfig, assignment: str, flag: str = "--set") -> None:
    """'train.lr_g=4e-4' → cfg.train.lr_g = 4e-4, parsed by `fashiongan train`'s own flag."""
    key, sep, text = assignment.partition("=")
    if not sep:
        raise SystemExit(f"{flag} {assignment!r}: expected SECTION.FIELD=VALUE, a RunConfig field")
    try:
        apply_setting(cfg, key, text)
    except FashionGANError as e:
        raise SystemExit(f"{flag} {assignment!r}: {e}") from None


def first_crossings(curve: list[dict], key: str, thresholds: list[float], lower: bool) -> dict:
    out = {}
    for th in thresholds:
        hit = next((r for r in curve if (r[key] <= th if lower else r[key] >= th)), None)
        out[str(th)] = None if hit is None else hit["train_seconds"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds")
    p.add_argument("--eval-every-s", type=float, default=60.0)
    p.add_argument("--eval-samples", type=int, default=10000)
    p.add_argument("--fid-thresholds", default=f"40,20,10,{REFERENCE_FID}")
    p.add_argument("--acc-thresholds", default=f"0.5,0.8,{REAL_LABEL_ACCURACY}")
    p.add_argument("--json", help="write the curve and crossings here")
    p.add_argument("--out", help="keep the run directory here (default: a temporary one)")
    args = p.parse_args()

    cfg = from_dict(load_preset(args.preset))
    for assignment in args.set:
        parse_set(cfg, assignment)
    cfg.train.epochs, cfg.train.steps, cfg.train.kimg, cfg.train.max_time = 0, 0, 0, args.budget
    cfg.log.progress = False
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.out or tmp)
        trainer = Trainer(cfg, run_dir)
        device = trainer.device
        judge = PeriodicEval(
            args.eval_samples, default_cache_dir(), cfg.data.data, None, device, cfg.log.evaluator
        )
        trainer.G.train()
        trainer.D.train()
        # the clock is read every step on CPU; on a GPU only at log ticks, where `train`
        # synchronises anyway, so timing adds no host-device syncs to the loop
        tick = 1 if device.type == "cpu" else cfg.log.log_every
        curve, clock, next_eval = [], 0.0, args.eval_every_s
        segment_start = time.perf_counter()
        while clock < args.budget:
            trainer.train_step()
            if trainer.step % cfg.log.log_every == 0:  # the same sync `train` makes
                stats = dict(zip(STAT_KEYS, trainer.stats.tolist()))
                trainer.stats.zero_()
                if not all(math.isfinite(v) for v in stats.values()):
                    print(f"diverged at step {trainer.step}: {stats}", file=sys.stderr)
                    break
            if trainer.step % tick:
                continue
            now = time.perf_counter()
            clock, segment_start = clock + now - segment_start, now
            trainer.elapsed = clock  # what --max-time and --lr-decay see
            if clock >= next_eval or clock >= args.budget:
                next_eval += args.eval_every_s
                trainer.G.eval()
                row = judge(trainer.sampler())
                trainer.G.train()
                row = {
                    "train_seconds": round(clock, 1),
                    "step": trainer.step,
                    "kimg": round(trainer.nimg / 1000, 1),
                    "img_per_s": round(trainer.nimg / clock, 1),
                    **{k: row[k] for k in ("fid", "is", "label_accuracy") if k in row},
                }
                curve.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                segment_start = time.perf_counter()  # evaluation is off the clock
        trainer.save(final=True)
    lower_fid = [float(v) for v in args.fid_thresholds.split(",")]
    higher_acc = [float(v) for v in args.acc_thresholds.split(",")]
    result = {
        "preset": args.preset,
        "set": args.set,
        "budget_s": args.budget,
        "eval_samples": args.eval_samples,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "curve": curve,
        "fid_first_below": first_crossings(curve, "fid", lower_fid, lower=True),
    }
    if curve and "label_accuracy" in curve[0]:
        result["accuracy_first_above"] = first_crossings(
            curve, "label_accuracy", higher_acc, lower=False
        )
    print("| train s | kimg | img/s | FID | IS | label acc |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in curve:
        acc_text = f"{r['label_accuracy']:.3f}" if "label_accuracy" in r else "—"
        print(
            f"| {r['train_seconds']:.0f} | {r['kimg']:.0f} | {r['img_per_s']:.0f} | "
            f"{r['fid']:.2f} | {r['is']:.2f} | {acc_text} |"
        )
    for name, key in (("FID ≤", "fid_first_below"), ("label acc ≥", "accuracy_first_above")):
        for th, sec in result.get(key, {}).items():
            print(f"{name} {th}: " + ("not reached" if sec is None else f"{sec:.0f} s"))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
