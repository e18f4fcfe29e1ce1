"""`--eval-every`: FID, IS and label accuracy of a fixed set of latents during training, against
the cached real test split, so a run's quality can be followed and its best step kept. The
numbers come from the metric registry that `fashiongan evaluate` uses, on the same features."""

import time
from pathlib import Path

import torch

from fashiongan.metrics.evaluate import featurize
from fashiongan.metrics.evaluator import load_evaluator
from fashiongan.metrics.fid import frechet_distance, gaussian_stats
from fashiongan.metrics.reference import real_features
from fashiongan.metrics.sources import ImageSet
from fashiongan.metrics.suite import METRICS, Context
from fashiongan.sampling import LoadedGenerator, latents

EVAL_SEED = 123_456  # the same latents at every evaluation: the curve shows G, not noise
# the metrics scored, and the keys of theirs that go into metrics.jsonl
PERIODIC = {"fid": ("fid",), "is": ("is", "is_std"), "label_accuracy": ("label_accuracy",)}


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
        inception_weights: str | None | bool = False,
    ):
        """inception_weights: False (evaluator space only), None (the Inception weights from
        the cache, downloaded once) or a file: inception_fid too."""
        self.n, self.cache_dir = n, cache_dir
        self.inception = None
        if inception_weights is not False:
            from fashiongan.metrics.inception import (
                InceptionFeatures,
                require_torch_fidelity,
                weights_file,
            )

            require_torch_fidelity("--eval-features inception")
            self.inception = InceptionFeatures(*weights_file(inception_weights, cache_dir), device)
        self.evaluator = load_evaluator(evaluator_dir).to(device)
        self.reference = real_features(self.evaluator, "test", cache_dir, data, data_env)
        if self.inception is not None:  # the reference's Gaussian, once for the whole run
            real = self.inception.of_reference(self.reference, cache_dir)
            self.inception_reference = gaussian_stats(real)
        info = self.evaluator.info
        if self.reference.checksum not in (info.get("train_checksum"), info.get("test_checksum")):
            print(
                f"warning: --eval-every: {self.evaluator.id} was trained on other data than "
                f"{self.reference.description}; its numbers do not mean much here (train one "
                "with `fashiongan evaluator train --data ...` and pass --evaluator)"
            )

    def __call__(self, gen: LoadedGenerator) -> dict:
        """→ {fid, is, is_std, label_accuracy (conditional only), eval_seconds, evaluator}"""
        start = time.perf_counter()
        y = gen.labels(n=self.n)
        images = gen.images(latents(EVAL_SEED, self.n, gen.z_dim), y)
        sample = featurize(ImageSet(images, y, "training samples"), self.evaluator)
        ctx = Context(
            sample, self.reference, "test", self.evaluator, self._no_other_split, self.cache_dir
        )
        row = {}
        for name, keys in PERIODIC.items():
            metric = METRICS.get(name)
            if metric.needs_labels and y is None:
                continue
            values = metric.fn(ctx)
            row.update({k: values[k] for k in keys})
        if self.inception is not None:
            fake, _ = self.inception.features(sample.images)
            row["inception_fid"] = frechet_distance(
                *gaussian_stats(fake), *self.inception_reference
            )
        row["eval_seconds"] = round(time.perf_counter() - start, 2)
        row["evaluator"] = self.evaluator.id
        return row

    @staticmethod
    def _no_other_split(split: str):
        raise RuntimeError(f"--eval-every scores against the test split only, not {split}")
