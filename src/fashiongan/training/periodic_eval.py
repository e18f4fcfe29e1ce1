"""`--eval-every`: FID, IS and label accuracy of a fixed set of latents during training, against
the cached real test split, so a run's quality can be followed and its best step kept."""

import time
from pathlib import Path

import torch

from fashiongan.metrics.evaluate import featurize
from fashiongan.metrics.evaluator import load_evaluator
from fashiongan.metrics.fid import fid
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.label_accuracy import label_accuracy
from fashiongan.metrics.reference import real_features
from fashiongan.metrics.sources import ImageSet
from fashiongan.sampling import LoadedGenerator, latents

EVAL_SEED = 123_456  # the same latents at every evaluation: the curve shows G, not noise


class PeriodicEval:
    """Loads the evaluator and the reference features once; each call scores a generator."""

    def __init__(
        self,
        n: int,
        cache_dir: Path,
        data: str | None,
        data_env: str | None,
        device: torch.device,
        evaluator_dir: str | None = None,
    ):
        self.n = n
        self.evaluator = load_evaluator(evaluator_dir).to(device)
        self.reference = real_features(self.evaluator, "test", cache_dir, data, data_env)

    def __call__(self, gen: LoadedGenerator) -> dict:
        """→ {fid, is, is_std, label_accuracy (conditional only), eval_seconds, evaluator}"""
        start = time.perf_counter()
        y = gen.labels(n=self.n)
        images = gen.images(latents(EVAL_SEED, self.n, gen.z_dim), y)
        sample = featurize(ImageSet(images, y, "training samples"), self.evaluator)
        is_mean, is_std = inception_score(sample.logits)
        row = {
            "fid": fid(sample.features, self.reference.features),
            "is": is_mean,
            "is_std": is_std,
        }
        if y is not None:
            row["label_accuracy"] = label_accuracy(sample.logits, sample.labels, 10)[
                "label_accuracy"
            ]
        row["eval_seconds"] = round(time.perf_counter() - start, 2)
        row["evaluator"] = self.evaluator.id
        return row
