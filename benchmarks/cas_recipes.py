"""CAS under the evaluator's recipe and under CAS_RECIPE, on the same generated images: the
time each takes and the ranking of the generators each gives, with real images of the same size
as the reference row. Usage:
python benchmarks/cas_recipes.py RUN [RUN ...] [--per-class 1000] [--data DIR] [--time-60k]"""

import argparse
import time

from fashiongan.data.datasets import load_dataset
from fashiongan.metrics.cas import CAS_RECIPE
from fashiongan.metrics.evaluate import sample_generator
from fashiongan.metrics.evaluator import Recipe, accuracy, load_evaluator, train_classifier
from fashiongan.metrics.reference import balanced_draw, real_features


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--data")
    ap.add_argument("--time-60k", action="store_true", help="also time CAS_RECIPE on 60k images")
    args = ap.parse_args()
    test = load_dataset(args.data, "test")
    evaluator = load_evaluator()
    recipes = {"evaluator's": Recipe.from_dict(evaluator.info["recipe"]), "CAS_RECIPE": CAS_RECIPE}
    n = 10 * args.per_class
    sets = {}
    for run in args.runs:
        s = sample_generator(run, n, seed=1)
        sets[run] = (s.images, s.labels)
    from pathlib import Path

    train = real_features(evaluator, "train", Path.home() / ".cache" / "fashiongan", args.data)
    real = balanced_draw(train, n, 0)
    sets["real train images"] = (real.images, real.labels)
    print(f"| images ({n} per set) | recipe | CAS (test accuracy) | seconds |")
    print("| --- | --- | --- | --- |")
    for name, (images, labels) in sets.items():
        for label, recipe in recipes.items():
            start = time.perf_counter()
            net = train_classifier(images, labels, recipe)
            seconds = time.perf_counter() - start
            acc = accuracy(net, test.images, test.labels)
            print(f"| {name} | {label} | {acc:.4f} | {seconds:.1f} |", flush=True)
    if args.time_60k:
        start = time.perf_counter()
        train_classifier(train.images, train.labels, CAS_RECIPE)
        print(f"CAS_RECIPE on the 60k train images: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
