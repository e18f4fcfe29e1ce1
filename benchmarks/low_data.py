"""The low-data track on Fashion-MNIST: train on 100 and 600 images per class (a seeded,
class-balanced --subset) with no augmentation, DiffAugment and ADA, and the full 60,000 without,
every run for the same number of images seen (equal compute); then FID and label accuracy of
10,000 samples against the real test split in the shipped evaluator's space.

    python benchmarks/low_data.py [--kimg 150] [--per-class 100,600] [--augment none,diffaug,ada]
        [--seeds 0] [--set train.lr_g=4e-4 ...] [--out runs/low-data] [--json out.json]

Budgets are in images seen, not seconds, so the table does not depend on what else the machine
was doing. Prints a markdown table (mean ± std over seeds when more than one).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import fashiongan
from fashiongan.cli import apply_setting
from fashiongan.config import RunConfig


def row(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kimg", type=float, default=150.0, help="images seen per run, thousands")
    p.add_argument("--per-class", default="100,600")
    p.add_argument("--augment", default="none,diffaug,ada")
    p.add_argument("--seeds", default="0")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--eval-samples", type=int, default=10_000)
    p.add_argument("--out", default="runs/low-data")
    p.add_argument("--json")
    args = p.parse_args()
    settings = {}
    for assignment in args.set:  # checked by `fashiongan train`'s own parser
        key, _, text = assignment.partition("=")
        apply_setting(RunConfig(), key, text)
        settings[key.rsplit(".", 1)[-1]] = text
    cells = [(k, a) for k in map(int, args.per_class.split(",")) for a in args.augment.split(",")]
    cells.append((0, "none"))  # the full data set, the reference at equal compute
    results = []
    for per_class, augment in cells:
        for seed in map(int, args.seeds.split(",")):
            name = f"{'full' if not per_class else f'{per_class}pc'}-{augment}-s{seed}"
            run = fashiongan.train(
                Path(args.out) / name, kimg=args.kimg, subset=per_class * 10, augment=augment,
                seed=seed, eval_every=0, progress=False, epochs=0, **settings,
            )  # fmt: skip
            ev = fashiongan.evaluate(
                run.run_dir, metrics=["fid", "label_accuracy"], num_samples=args.eval_samples,
                write=False, log=lambda s: None,
            )  # fmt: skip
            r = ev.results
            results.append({"per_class": per_class, "augment": augment, "seed": seed,
                             "fid": r["fid"], "label_accuracy": r["label_accuracy"],
                             "kimg": run.nimg / 1000, "seconds": run.seconds})  # fmt: skip
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(f"\n{args.kimg:g} kimg per run, {args.eval_samples} samples vs the test split\n")
    print("| images per class | augment | FID | label accuracy |\n| --- | --- | ---: | ---: |")
    for per_class, augment in cells:
        mine = [r for r in results if (r["per_class"], r["augment"]) == (per_class, augment)]
        who = "6,000 (all 60k)" if not per_class else str(per_class)
        fid = row([r["fid"] for r in mine], 2)
        acc = row([r["label_accuracy"] for r in mine], 4)
        print(f"| {who} | {augment} | {fid} | {acc} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
