"""Evaluate a source end to end: sample (or read) the images, run them through the evaluator,
score them against the cached real reference with floors beside, and write the report. The
Python face of `fashiongan evaluate`."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from fashiongan.data.datasets import default_cache_dir, resize_images
from fashiongan.errors import FashionGANError
from fashiongan.fileio import writable_dir
from fashiongan.metrics.defaults import (
    CAS_PER_CLASS,
    FID_MIN_SAMPLES,
    MEMORIZATION_SAMPLES,
    NUM_SAMPLES,
)
from fashiongan.metrics.evaluator import EVAL_SIZE, Evaluator, load_evaluator
from fashiongan.metrics.order import canonical_order
from fashiongan.metrics.reference import FeatureSet
from fashiongan.metrics.sources import ImageSet, is_generator_source, read_image_set
from fashiongan.metrics.suite import evaluate_set
from fashiongan.reports.evaluation import write_report
from fashiongan.sampling import latents, load_generator


@dataclass
class Evaluation:
    """What `evaluate` returns. `results` is metrics.json's content; `metrics`, `floors` and
    `provenance` are its parts; `table()` the terminal table (a notebook shows it as one)."""

    results: dict  # flat metric keys, floors, provenance (what metrics.json holds)
    out_dir: Path | None
    written: list[Path]

    @property
    def metrics(self) -> dict[str, float]:
        """Every scalar metric value by key (fid, kid, is, precision, ...)."""
        return {
            k: v
            for k, v in self.results.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }

    @property
    def floors(self) -> dict:
        """The real-vs-real value of each metric at the same sample size."""
        return self.results.get("floors", {})

    @property
    def provenance(self) -> dict:
        """Evaluator, reference split and checksum, sample counts, seeds, versions, notes."""
        return self.results["provenance"]

    def __getitem__(self, key: str):
        return self.results[key]

    def table(self) -> str:
        from fashiongan.reports.evaluation import format_table

        return format_table(self.results)

    def _repr_markdown_(self) -> str:
        from fashiongan.reports.evaluation import table_rows

        lines = ["| metric | value | real floor | better |", "| --- | --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(self.results)]
        return "\n".join(lines)


def sample_generator(
    source: str | Path,
    n: int,
    seed: int = 0,
    ema: bool = True,
    device: str | torch.device = "cpu",
    batch_size: int = 1000,
) -> ImageSet:
    """n images from a run directory or checkpoint; a conditional model gets n/10 per class."""
    gen = load_generator(source, ema=ema, device=device)
    y = gen.labels(n=n)
    images = gen.images(latents(seed, n, gen.z_dim), y, batch_size)
    what = "EMA" if ema else "raw"
    return ImageSet(
        images,
        y,
        f"{source} (step {gen.step}, {what} G, seed {seed})",
        gen.class_names,
        gen.step,
        gen.config.get("data"),
    )


def check_held_out(image_set: ImageSet, evaluator: Evaluator) -> None:
    """A run on a user's set held out a part by --val-fraction and --split-seed; an evaluator
    whose held-out part (its reference) was cut otherwise would score against images the GAN
    trained on: refused."""
    run, ev = image_set.trained_on, evaluator.info.get("data_options")
    if not run or not ev:
        return
    for key, default in (("val_fraction", 0.1), ("split_seed", 0)):
        mine, theirs = run.get(key, default), ev.get(key, default)
        if mine != theirs:
            flag = "--" + key.replace("_", "-")
            raise FashionGANError(
                f"the run held out its data with {flag} {mine}, the evaluator's held-out part "
                f"(the real images scored against) with {theirs}: they would overlap the GAN's "
                f"training images; train the evaluator with {flag} {mine}"
            )


def default_out_dir(source: str | Path) -> Path:
    """<run>/eval for a run directory; <run>/eval-<checkpoint> for a checkpoint inside a run;
    <name>-eval beside any other file or folder."""
    path = Path(source)
    if path.is_dir() and (path / "checkpoints").is_dir():
        return path / "eval"
    if path.suffix == ".pt" and path.parent.name == "checkpoints":
        return path.parent.parent / f"eval-{path.stem}"
    stem = path.name.split(".")[0] if path.is_file() else path.name
    return path.parent / f"{stem}-eval"


def _at_eval_size(images: torch.Tensor, size: int = EVAL_SIZE) -> torch.Tensor:
    """Images at the evaluator's side (antialiased bilinear, as the real split was resized)."""
    return images if images.shape[-1] == size else resize_images(images, size)


def featurize(image_set: ImageSet, evaluator: Evaluator) -> FeatureSet:
    """The set in canonical order (metrics.order) with its evaluator features: batches then hold
    the same images whatever order the set came in, so features are bit-identical too."""
    order = canonical_order(image_set.images, image_set.labels)
    images = _at_eval_size(image_set.images[order], evaluator.input["size"])
    labels = None if image_set.labels is None else image_set.labels[order]
    features, logits = evaluator.features(images)
    return FeatureSet(images, labels, features, logits, image_set.description)


def _judged_set(source, num_samples, seed, ema, device, cas_per_class, log, size=EVAL_SIZE):
    """The image set to judge, and for a generator the function that samples CAS's training
    set (None for an image set, on which CAS trains as it is)."""
    if isinstance(source, ImageSet):
        return source, None
    if not is_generator_source(Path(source)):
        return read_image_set(str(source)), None
    if num_samples < 2:
        raise FashionGANError(f"--num-samples {num_samples}: must be at least 2")
    if cas_per_class < 1:
        raise FashionGANError(f"--cas-per-class {cas_per_class}: must be at least 1")
    image_set = sample_generator(source, num_samples, seed, ema, device)
    n_cas = cas_per_class * len(image_set.class_names)

    def cas_set() -> tuple[torch.Tensor, torch.Tensor]:
        log(f"CAS: sampling {n_cas} images ({cas_per_class} per class, seed {seed + 1})")
        s = sample_generator(source, n_cas, seed + 1, ema, device)
        return _at_eval_size(s.images, size), s.labels

    return image_set, cas_set


def _inception_ready(weights, cache: Path, fashion: bool, split: str, env_dir) -> tuple:
    """torch-fidelity importable, the real split on disk (Inception has no shipped statistics),
    then the verified weights: (path, SHA-256)."""
    from fashiongan.data.datasets import find_data
    from fashiongan.errors import DataNotFound
    from fashiongan.metrics.inception import require_torch_fidelity, weights_file

    require_torch_fidelity()
    try:
        if fashion:
            find_data(None, split, env_dir)
    except DataNotFound as e:
        raise FashionGANError(f"--features inception needs the real images: {e}") from None
    return weights_file(weights, cache)


def _warn_small(n: int, with_floor: bool, log) -> None:
    floor = f" — the floor printed beside is computed at n={n} too" if with_floor else ""
    log(
        f"warning: FID on {n} images is biased upward (it falls as n grows); compare only "
        f"scores at equal n{floor}"
    )


def _add_inception(results, sample, other, evaluator, split, weights, seed, cache_dir, data,
                   env_dir, device, log) -> None:  # fmt: skip
    from fashiongan.metrics.inception_scores import add_inception
    from fashiongan.metrics.suite import floor_sample, make_real_loader

    floor = None
    if other is None:  # the real split (_inception_ready made sure it is there)
        real = make_real_loader(evaluator, cache_dir, data, env_dir)
        other, floor = real(split), floor_sample(real, split, len(sample))
    add_inception(results, sample, other, floor, weights, cache_dir, seed, device, log)


def evaluate(
    source: str | Path | ImageSet,
    metrics: list[str] | None = None,
    num_samples: int = NUM_SAMPLES,
    reference: str = "test",
    seed: int = 0,
    out: str | Path | None = None,
    evaluator: Evaluator | str | Path | None = None,
    cache_dir: str | Path | None = None,
    data: str | None = None,
    env_dir: str | None = None,
    ema: bool = True,
    device: str | torch.device = "cpu",
    memorization_samples: int = MEMORIZATION_SAMPLES,
    cas_per_class: int = CAS_PER_CLASS,
    write: bool = True,
    log: Callable[[str], None] = print,
    force_evaluator: bool = False,
    against: str | Path | ImageSet | None = None,
    inception: bool = False,
    inception_weights: str | Path | None = None,
) -> Evaluation:
    """Score a run directory, checkpoint, image-set file/folder (see metrics.sources) or an
    ImageSet. metrics: registry names (None: every fast metric that applies). A generator
    trains CAS on cas_per_class fresh images per class; an image set on itself. against: a
    second source of any of those kinds to compare with instead of the real split (a generator
    is sampled with the same seed and count; no floors). inception: FID, KID, IS, precision/
    recall in Inception-v3 space too (inception_weights: a local copy of the file)."""
    start = time.perf_counter()
    if write:  # a report that cannot be written fails now, not after minutes of metrics
        out = (
            Path(out)
            if out
            else default_out_dir(source if not isinstance(source, ImageSet) else ".")
        )
        writable_dir(out, "--out")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if inception:  # before minutes of metrics: the library, the reals, the verified weights
        inception_weights = _inception_ready(inception_weights, cache, against is None and
                                             data is None, reference, env_dir)  # fmt: skip
    if not isinstance(evaluator, Evaluator):  # None (the shipped one) or a directory
        evaluator = load_evaluator(evaluator)
    evaluator = evaluator.to(device)
    image_set, cas_set = _judged_set(
        source, num_samples, seed, ema, device, cas_per_class, log, evaluator.input["size"]
    )
    check_held_out(image_set, evaluator)
    n = len(image_set.images)
    if (metrics is None or "fid" in metrics) and n < FID_MIN_SAMPLES:
        _warn_small(n, against is None, log)
    sample = featurize(image_set, evaluator)
    other = None
    if against is not None:
        other_set, _ = _judged_set(against, num_samples, seed, ema, device, 1, log)
        other = featurize(other_set, evaluator)
        log(f"against {len(other)} images of {other.description}")
    log(f"evaluating {n} images of {image_set.description} with {evaluator.id}")
    results, artifacts = evaluate_set(
        sample, evaluator, metrics, reference, cache, data, env_dir, seed, log=log,
        memorization_samples=memorization_samples, cas_set=cas_set, device=device,
        force_evaluator=force_evaluator, against=other,
    )  # fmt: skip
    if inception:
        _add_inception(results, sample, other, evaluator, reference, inception_weights, seed,
                       cache, data, env_dir, device, log)  # fmt: skip
    results["provenance"]["seconds"] = round(time.perf_counter() - start, 2)
    if image_set.generator_step is not None:
        results["provenance"]["generator_step"] = image_set.generator_step
        if "cas" in results["provenance"]["metrics"]:
            results["provenance"]["cas_images"] = f"{cas_per_class} per class, seed {seed + 1}"
    written: list[Path] = []
    out_dir = None
    if write:
        out_dir = Path(out)
        written = write_report(
            out_dir, results, artifacts, sample.images, sample.labels, image_set.class_names
        )
    return Evaluation(results, out_dir, written)
