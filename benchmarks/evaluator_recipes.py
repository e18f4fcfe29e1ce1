"""Train the evaluator under several recipes and print test accuracy and time for each: the
sweep behind the shipped recipe. Usage:
python benchmarks/evaluator_recipes.py [--device cuda] [--data DIR] [--seeds 0 1]"""

import argparse
import dataclasses
import time

from fashiongan.data.datasets import load_dataset
from fashiongan.metrics.evaluator import Recipe, accuracy, train_classifier

CANDIDATES = [
    dict(channels=(16, 32), convs=(2, 2), epochs=15),
    dict(channels=(32, 64, 128), convs=(1, 1, 1), epochs=6),
    dict(channels=(32, 64, 128), convs=(1, 1, 1), epochs=10),
    dict(channels=(32, 64, 128), convs=(1, 1, 1), epochs=10, flip=False),
    dict(channels=(24, 48, 96), convs=(1, 1, 1), epochs=8),
    dict(channels=(24, 48, 96), convs=(1, 1, 1), epochs=12),
    dict(channels=(32, 64), convs=(1, 1), epochs=10),
    dict(channels=(32, 64, 64), convs=(1, 1, 1), epochs=10),
    dict(channels=(32, 64, 128), convs=(1, 1, 1), epochs=10, dropout=0.5),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    train = load_dataset(args.data, "train")
    test = load_dataset(args.data, "test")
    print("| recipe | seed | test acc | train acc (10k) | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for overrides in CANDIDATES:
        for seed in args.seeds:
            recipe = dataclasses.replace(Recipe(), seed=seed, **overrides)
            start = time.perf_counter()
            net = train_classifier(train.images, train.labels, recipe, device=args.device)
            seconds = time.perf_counter() - start
            net = net.cpu()
            print(
                f"| {overrides} | {seed} | {accuracy(net, test.images, test.labels):.4f} | "
                f"{accuracy(net, train.images[:10000], train.labels[:10000]):.4f} | "
                f"{seconds:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
