"""Label accuracy of conditional samples (the share of G(z, y) the evaluator classifies as y,
overall and per class, with the confusion matrix), and the predicted-class histogram and its
entropy, which measures mode coverage for unconditional models (ln 10 ≈ 2.303 nats when all
ten classes are equally frequent)."""

import numpy as np
import torch


def confusion_matrix(requested, predicted, n_classes: int) -> np.ndarray:
    """int64 C×C counts: rows = requested (or true) class, columns = predicted class."""
    r, p = np.asarray(requested, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(r * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def label_accuracy(logits, labels, n_classes: int) -> dict:
    """logits float N×C, labels int64 N → accuracy (fraction), per-class accuracy (None for a
    class never requested) and the confusion matrix."""
    predicted = torch.as_tensor(np.asarray(logits)).argmax(1).numpy()
    cm = confusion_matrix(labels, predicted, n_classes)
    rows = cm.sum(1)
    per_class = [float(cm[c, c] / rows[c]) if rows[c] else None for c in range(n_classes)]
    return {
        "label_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "class_accuracy": per_class,
        "confusion": cm,
    }


def class_histogram(logits, n_classes: int) -> dict:
    """Share of samples per predicted class and the histogram's entropy in nats."""
    predicted = torch.as_tensor(np.asarray(logits)).argmax(1).numpy()
    share = np.bincount(predicted, minlength=n_classes) / max(len(predicted), 1)
    nonzero = share[share > 0]
    return {
        "class_histogram": [float(s) for s in share],
        "class_entropy": float(-(nonzero * np.log(nonzero)).sum()),
    }
