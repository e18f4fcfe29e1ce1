"""Classification accuracy score (CAS; Ravuri & Vinyals 2019), train-on-synthetic-test-on-real:
a fresh classifier is trained on labelled generated images and tested on the real test split.
Its scale is the same classifier and protocol trained on as many real images per class (the
ratio is reported); the reverse score tests that real-trained classifier on the generated images.

The classifier is CAS_RECIPE, a smaller and shorter cousin of the evaluator's recipe: the
evaluator's own recipe (15 epochs of a 4-conv net) took ~17 minutes for 60k images on 2 cores,
which nobody runs. benchmarks/cas_recipes.py measures both on the same generators: time and
the ranking they give (benchmarks/RESULTS.md, "CAS")."""

import time
from collections.abc import Callable

import torch

from fashiongan.metrics.evaluator import EvaluatorNet, Recipe, accuracy, train_classifier

# one 3×3 conv per stage, 128 features, 4 epochs, no flips (the evaluator's: 2 convs, 256, 15)
CAS_RECIPE = Recipe(
    channels=(16, 32), convs=(1, 1), features=128, epochs=4, batch_size=256, lr=3e-3, flip=False
)


def per_class_count(labels: torch.Tensor, n_classes: int) -> int:
    """The smallest class count (CAS compares with a real set of that many per class)."""
    return int(torch.bincount(labels, minlength=n_classes).min())


def cas(
    fake_images: torch.Tensor,
    fake_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    baseline: EvaluatorNet,
    baseline_accuracy: float,
    recipe: Recipe,
    log: Callable[[str], None] = print,
    device: torch.device | str = "cpu",
    shape: dict | None = None,
) -> dict:
    """fake_*: uint8 N×28×28 and int64 labels; test_*: the real test split; baseline: the recipe
    trained on as many real images per class, with its test accuracy."""
    start = time.perf_counter()
    log(
        f"CAS: training a classifier on {len(fake_images)} generated images "
        f"({recipe.epochs} epochs)"
    )
    net = train_classifier(
        fake_images,
        fake_labels,
        recipe,
        progress=lambda e, n, loss: log(
            f"  CAS epoch {e}/{n}  loss {loss:.4f}  {time.perf_counter() - start:.0f} s"
        ),
        device=device,
        **({"shape": shape} if shape else {}),
    ).cpu()
    score = accuracy(net, test_images, test_labels)
    return {
        "cas": score,
        "cas_real": baseline_accuracy,
        "cas_ratio": score / baseline_accuracy if baseline_accuracy > 0 else float("nan"),
        "cas_reverse": accuracy(baseline, fake_images, fake_labels),
    }
