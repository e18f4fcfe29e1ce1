"""The metric registry and the evaluation of one image set against a real reference split, with
the real-vs-real floor of every metric beside it.

Each metric is a function of a Context (the judged set and the real sets, all as evaluator
features) returning flat, JSON-ready values; the registry's keys feed `--metrics`.
"""

import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fashiongan.errors import DataNotFound, FashionGANError
from fashiongan.fileio import atomic_save, atomic_write_bytes
from fashiongan.metrics import cas as cas_mod
from fashiongan.metrics.defaults import (
    FLOOR_SEED,
    IS_SPLITS,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    MEMORIZATION_SAMPLES,
    PRDC_K,
    REFERENCE_SPLITS,
)
from fashiongan.metrics.evaluator import (
    Evaluator,
    Recipe,
    accuracy,
    build_net,
    train_classifier,
)
from fashiongan.metrics.fid import class_fid, fid, frechet_distance, gaussian_stats
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.kid import kid
from fashiongan.metrics.label_accuracy import class_histogram, label_accuracy
from fashiongan.metrics.memorization import cached_near_copy_threshold, memorization
from fashiongan.metrics.order import canonical_order
from fashiongan.metrics.precision_recall import prdc
from fashiongan.metrics.provenance import provenance
from fashiongan.metrics.reference import (
    OFFLINE_METRICS,
    FeatureSet,
    ReferenceStats,
    balanced_draw,
    check_fits,
    real_features,
    reference_radii,
    shipped_stats,
)
from fashiongan.metrics.swd import swd
from fashiongan.registry import Registry

# metrics whose floor needs real images the evaluator never trained on, whatever the reference
FLOOR_ON_TEST = ("label_accuracy", "memorization")


@dataclass
class Context:
    """What a metric sees. `sample` is the judged set; `reference` the real split it is compared
    with; `train()` and `test()` load (and cache) the real splits on first use."""

    sample: FeatureSet
    reference: FeatureSet
    reference_split: str
    evaluator: Evaluator
    real: Callable[[str], FeatureSet]
    cache_dir: Path
    seed: int = 0
    log: Callable[[str], None] = print
    artifacts: dict = field(default_factory=dict)  # name → data for the report's figures
    memorization_samples: int = MEMORIZATION_SAMPLES
    cas_recipe: Recipe | None = None
    # labelled images to train CAS on (uint8 N×28×28, int64 N); default: the judged set
    cas_set: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    device: torch.device | str = "cpu"  # where CAS classifiers train
    notes: list[str] = field(default_factory=list)  # what a metric adapted, for the report
    # the reference as shipped statistics (no data set here): FID reads these, not features
    reference_stats: ReferenceStats | None = None

    @property
    def n_classes(self) -> int:
        return self.evaluator.n_classes


@dataclass(frozen=True)
class Metric:
    fn: Callable[[Context], dict]
    keys: tuple[str, ...]
    summary: str  # one line for --help and the report
    needs_labels: bool = False
    slow: bool = False  # left out of the default set (minutes)
    min_samples: int = 2  # fewer judged images: left out of the default set, refused if named
    # the report's table rows for keys it does not know yet: (key, label, "low"|"high", format)
    rows: tuple[tuple[str, str, str, str], ...] = ()


METRICS: Registry[Metric] = Registry("metric")


def _metric(name: str, keys: tuple[str, ...], summary: str, **flags):
    def add(fn):
        METRICS.register(name)(Metric(fn, keys, summary, **flags))
        return fn

    return add


@_metric("fid", ("fid",), "Fréchet distance of evaluator features to the reference split")
def _fid(ctx: Context) -> dict:
    if (stats := ctx.reference_stats) is not None:
        own = gaussian_stats(ctx.sample.features)
        return {"fid": frechet_distance(*own, stats.mu, stats.sigma)}
    return {"fid": fid(ctx.sample.features, ctx.reference.features)}


@_metric("kid", ("kid", "kid_std"), "kernel (MMD², cubic kernel) distance, mean ± std")
def _kid(ctx: Context) -> dict:
    size = min(KID_SUBSET_SIZE, len(ctx.sample), len(ctx.reference))
    if size < KID_SUBSET_SIZE:
        ctx.notes.append(
            f"KID: subsets of {size} images instead of {KID_SUBSET_SIZE} (the smaller set has "
            f"{size}); compare KID only at equal subset size"
        )
    mean, std = kid(ctx.sample.features, ctx.reference.features, KID_SUBSETS, size, ctx.seed)
    return {"kid": mean, "kid_std": std}


@_metric(
    "is",
    ("is", "is_std"),
    "Inception Score with the evaluator's posteriors (max 10)",
    min_samples=IS_SPLITS,
)
def _is(ctx: Context) -> dict:
    mean, std = inception_score(ctx.sample.logits, IS_SPLITS, ctx.seed)
    return {"is": mean, "is_std": std}


@_metric(
    "swd",
    ("swd",),
    "sliced Wasserstein distance of evaluator features (0 = same set)",
    rows=(("swd", "SWD", "low", "{:.4f}"),),
)
def _swd(ctx: Context) -> dict:
    return {"swd": swd(ctx.sample.features, ctx.reference.features, seed=ctx.seed)}


@_metric(
    "prdc",
    ("precision", "recall", "density", "coverage"),
    f"k-NN precision/recall (fidelity/diversity), density, coverage (k={PRDC_K})",
    min_samples=PRDC_K + 1,
)
def _prdc(ctx: Context) -> dict:
    ref = ctx.reference
    radii = reference_radii(ref, ctx.evaluator, ctx.cache_dir, ctx.reference_split, PRDC_K)
    return prdc(ref.features, ctx.sample.features, PRDC_K, radii)


@_metric(
    "label_accuracy",
    ("label_accuracy", "class_accuracy"),
    "share of images the evaluator assigns to their requested (or true) class",
    needs_labels=True,
)
def _label_accuracy(ctx: Context) -> dict:
    out = label_accuracy(ctx.sample.logits, ctx.sample.labels, ctx.n_classes)
    ctx.artifacts["confusion"] = out.pop("confusion")
    return out


@_metric(
    "class_fid",
    ("class_fid", "class_fid_mean"),
    "FID within each class (requested labels, else the evaluator's predicted ones)",
)
def _class_fid(ctx: Context) -> dict:
    s = ctx.sample
    groups = s.labels if s.labels is not None else s.logits.argmax(1)
    values = class_fid(
        s.features, groups, ctx.reference.features, ctx.reference.labels, ctx.n_classes
    )
    known = [v for v in values if v is not None]
    return {"class_fid": values, "class_fid_mean": float(np.mean(known)) if known else None}


@_metric(
    "class_histogram",
    ("class_histogram", "class_entropy"),
    "predicted-class shares and their entropy in nats (mode coverage; ln 10 = 2.303 is even)",
)
def _class_histogram(ctx: Context) -> dict:
    out = class_histogram(ctx.sample.logits, ctx.n_classes)
    ctx.artifacts["class_histogram"] = out["class_histogram"]
    return out


@_metric(
    "memorization",
    ("nn_pixel", "nn_feature", "near_copies"),
    "median distance to the nearest training image (pixel RMS, features); near-copy share",
)
def _memorization(ctx: Context) -> dict:
    train = ctx.real("train")
    s = ctx.sample
    n = min(len(s), ctx.memorization_samples)
    g = torch.Generator().manual_seed(ctx.seed)
    pick = torch.randperm(len(s), generator=g)[:n].sort().values
    out = memorization(
        s.images[pick],
        s.features[pick],
        train.images,
        train.features,
        cached_near_copy_threshold(train, ctx.real("test"), ctx.cache_dir, ctx.log),
    )
    d, nearest = out.pop("pixel_distances"), out.pop("nearest_index")
    closest = d.argsort()[:16]
    ctx.artifacts["closest_pairs"] = (
        s.images[pick][closest],
        train.images[nearest[closest]],
        d[closest],
    )
    return out


def _baseline(ctx: Context, per_class: int, recipe: Recipe) -> tuple[torch.nn.Module, float]:
    """The CAS recipe trained on `per_class` real train images per class, and its test accuracy;
    the shipped evaluator when that is the whole train split with the evaluator's recipe."""
    train, test = ctx.real("train"), ctx.real("test")
    if per_class * ctx.n_classes >= len(train) and recipe == Recipe.from_dict(
        ctx.evaluator.info["recipe"]
    ):
        return ctx.evaluator.net, float(ctx.evaluator.info["test_accuracy"])
    recipe_hash = hashlib.sha256(json.dumps(dataclasses.asdict(recipe)).encode()).hexdigest()
    key = f"{train.checksum[:16]}-{per_class}-{recipe_hash[:12]}"
    path = ctx.cache_dir / "eval" / "cas" / f"baseline-{key}.pt"
    net_state = None
    if path.is_file():
        try:
            net_state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - recompute a damaged cache
            net_state = None
    if net_state is not None:
        net = build_net(recipe)
        net.load_state_dict(net_state["net"])
        return net.eval(), float(net_state["accuracy"])
    real = balanced_draw(train, per_class * ctx.n_classes, FLOOR_SEED, ctx.n_classes)
    ctx.log(f"CAS baseline: training on {len(real)} real images (once, then cached)")
    net = train_classifier(
        real.images, real.labels, recipe, device=ctx.device, shape=ctx.evaluator.input
    ).cpu()
    acc = accuracy(net, test.images, test.labels)
    buffer = io.BytesIO()
    torch.save({"net": net.state_dict(), "accuracy": acc}, buffer)
    atomic_save(path, lambda f: f.write(buffer.getbuffer()))
    return net, acc


@_metric(
    "cas",
    ("cas", "cas_real", "cas_ratio", "cas_reverse"),
    "train-on-synthetic test-on-real accuracy, its ratio to real data, and the reverse",
    needs_labels=True,
    slow=True,
)
def _cas(ctx: Context) -> dict:
    test = ctx.real("test")
    images, labels = ctx.cas_set() if ctx.cas_set else (ctx.sample.images, ctx.sample.labels)
    recipe = ctx.cas_recipe or cas_mod.CAS_RECIPE
    per_class = cas_mod.per_class_count(labels, ctx.n_classes)
    if per_class < 1:
        raise FashionGANError("cas needs images of every class; this set lacks some")
    baseline, baseline_acc = _baseline(ctx, per_class, recipe)
    return cas_mod.cas(
        images, labels, test.images, test.labels, baseline, baseline_acc, recipe, ctx.log,
        ctx.device, ctx.evaluator.input,
    )  # fmt: skip


def applicable(
    names: list[str] | None,
    labelled: bool,
    n: int | None = None,
    notes: list | None = None,
    allowed: tuple[tuple[str, ...], str] | None = None,
) -> list[str]:
    """The metrics to compute for n judged images: `names` as asked (labels, n and `allowed`
    permitting; else a one-line error), or every fast metric that applies (what n or `allowed`
    rules out is noted). allowed: (the names the reference serves, why only those)."""
    if names is None:
        chosen = [m for m in METRICS.names() if not METRICS.get(m).slow and (
            labelled or not METRICS.get(m).needs_labels)]  # fmt: skip
        if allowed is not None:
            if notes is not None and (out := [m for m in chosen if m not in allowed[0]]):
                notes.append(f"left out: {', '.join(out)} ({allowed[1]})")
            chosen = [m for m in chosen if m in allowed[0]]
        too_few = [m for m in chosen if n is not None and n < METRICS.get(m).min_samples]
        if too_few and notes is not None:
            notes.append(
                f"left out for {n} images: "
                + ", ".join(f"{m} (needs {METRICS.get(m).min_samples})" for m in too_few)
            )
        return [m for m in chosen if m not in too_few]
    for m in names:
        metric = METRICS.get(m)
        if allowed is not None and m not in allowed[0]:
            raise FashionGANError(f"--metrics {m}: {allowed[1]}; drop it")
        if metric.needs_labels and not labelled:
            raise FashionGANError(
                f"--metrics {m} needs labelled images (a conditional model, or a data set with "
                f"labels); drop it"
            )
        if n is not None and n < metric.min_samples:
            raise FashionGANError(
                f"--metrics {m} needs at least {metric.min_samples} images, got {n}; raise "
                f"--num-samples (or give a larger set) or drop {m}"
            )
    return names


def compute(names: list[str], ctx: Context) -> dict:
    """Run the named metrics; flat values (floats, lists) by key."""
    values: dict = {}
    for name in names:
        start = time.perf_counter()
        values.update(METRICS.get(name).fn(ctx))
        ctx.log(f"  {name}: {time.perf_counter() - start:.1f} s")
    return values


def floor_sample(real: Callable[[str], FeatureSet], reference_split: str, n: int) -> FeatureSet:
    """Real images standing in for generated ones: n class-balanced images of the other split."""
    other = "train" if reference_split == "test" else "test"
    return balanced_draw(real(other), n, FLOOR_SEED)


def floors(names: list[str], ctx: Context, n: int) -> dict:
    """The real-vs-real value of each metric at sample size n, cached (JSON) per evaluator,
    reference data and n. CAS's floor is the real-data baseline (ratio 1)."""
    if (stats := ctx.reference_stats) is not None:  # no data set here: the shipped floors
        shipped = stats.floors.get(str(n))
        if shipped is None:
            ctx.notes.append(
                f"no real-vs-real floors: the shipped statistics hold them for "
                f"{', '.join(stats.floors) or 'no'} images, the data set is needed for {n}"
            )
            return {}
        return {k: shipped[k] for m in names for k in METRICS.get(m).keys if k in shipped}
    ref = ctx.reference
    name = f"floors-{ctx.reference_split}-{ref.checksum[:16]}-n{n}.json"
    path = ctx.cache_dir / "eval" / ctx.evaluator.id / name
    cached = {}
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            cached = {}
    missing = [m for m in names if m != "cas" and not all(k in cached for k in METRICS.get(m).keys)]
    if missing:
        ctx.log(f"real-vs-real floors for {', '.join(missing)} (once, then cached)")
        sample = floor_sample(ctx.real, ctx.reference_split, n)
        # the floor's own notes (and artifacts) are not the judged set's
        floor_ctx = dataclasses.replace(
            ctx, sample=sample, artifacts={}, notes=[], log=lambda s: None
        )
        on_test = [m for m in missing if m in FLOOR_ON_TEST]
        if on_test:  # unseen real images with their true labels: the test split
            test = balanced_draw(ctx.real("test"), n, FLOOR_SEED)
            cached.update(compute(on_test, dataclasses.replace(floor_ctx, sample=test)))
        rest = [m for m in missing if m not in FLOOR_ON_TEST]
        cached.update(compute(rest, floor_ctx))
        atomic_write_bytes(path, (json.dumps(cached, indent=1) + "\n").encode())
    out = {k: cached[k] for m in names if m != "cas" for k in METRICS.get(m).keys if k in cached}
    return out


def make_real_loader(
    evaluator: Evaluator, cache_dir: Path, data: str | None, env_dir: str | None
) -> Callable[[str], FeatureSet]:
    loaded: dict[str, FeatureSet] = {}

    def real(split: str) -> FeatureSet:
        if split not in loaded:
            loaded[split] = real_features(evaluator, split, cache_dir, data, env_dir)
        return loaded[split]

    return real


AGAINST_LEFT_OUT = ("memorization", "cas")  # they need the real train/test splits


def _reference(real, reference, evaluator, data, against, notes):
    """(the reference FeatureSet, its shipped statistics or None, allowed metrics or None): a
    given set (--against), the real split, or — the data set not installed, Fashion-MNIST's
    own search path — the evaluator's shipped statistics of the split."""
    if against is not None:
        allowed = [m for m in METRICS.names() if m not in AGAINST_LEFT_OUT]
        why = "not with --against: memorization and cas score against the real splits"
        if against.labels is None:
            allowed.remove("class_fid")
            why += "; class_fid needs labels on the --against set"
        return against, None, (tuple(allowed), why)
    try:
        return real(reference), None, None
    except DataNotFound as e:
        stats = shipped_stats(evaluator, reference) if data is None else None
        if stats is None:
            raise
        missing = str(e).split(";")[0]
        why = (
            f"only {', '.join(OFFLINE_METRICS)} work from the evaluator's shipped statistics; "
            f"the others need the real images ({missing}: `apt-get install "
            "dataset-fashion-mnist`, `fashiongan download` or --data PATH)"
        )
        notes.append(f"the real {reference} split is not installed here; FID uses the evaluator's "
                     f"shipped statistics of it ({stats.source})")  # fmt: skip
        empty = FeatureSet(
            torch.zeros(0, evaluator.input["size"], evaluator.input["size"], dtype=torch.uint8),
            None, torch.zeros(0, len(stats.mu)), torch.zeros(0, evaluator.n_classes),
            f"the evaluator's shipped statistics of the real {reference} split ({stats.n} "
            "images; the data set is not installed here)", stats.checksum,
        )  # fmt: skip
        return empty, stats, (OFFLINE_METRICS, why)


def evaluate_set(
    sample: FeatureSet,
    evaluator: Evaluator,
    names: list[str] | None = None,
    reference: str = "test",
    cache_dir: Path = Path.home() / ".cache" / "fashiongan",
    data: str | None = None,
    env_dir: str | None = None,
    seed: int = 0,
    with_floors: bool = True,
    log: Callable[[str], None] = print,
    memorization_samples: int = MEMORIZATION_SAMPLES,
    cas_recipe: Recipe | None = None,
    cas_set: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None,
    device: torch.device | str = "cpu",
    force_evaluator: bool = False,
    against: FeatureSet | None = None,
) -> tuple[dict, dict]:
    """Score `sample` against the real `reference` split, or against the set `against` (no
    floors then). Returns (results, artifacts): results holds the flat metric keys, `floors`
    (same keys, real vs real) and `provenance`."""
    if reference not in REFERENCE_SPLITS:
        raise FashionGANError(
            f"--reference {reference!r}; choose one of: {', '.join(REFERENCE_SPLITS)}"
        )
    notes: list[str] = []
    check_fits(sample, evaluator, data)
    real = make_real_loader(evaluator, Path(cache_dir), data, env_dir)
    ref, stats, allowed = _reference(real, reference, evaluator, data, against, notes)
    names = applicable(names, sample.labels is not None, len(sample), notes, allowed)
    # metrics that split or subsample see one order whatever order the set came in
    order = canonical_order(sample.images, sample.labels)
    sample = sample.subset(order, sample.description, sample.checksum)
    split = "against" if against is not None else reference
    ctx = Context(
        sample, ref, split, evaluator, real, Path(cache_dir), seed, log,
        memorization_samples=memorization_samples, cas_recipe=cas_recipe, cas_set=cas_set,
        device=device, notes=notes, reference_stats=stats,
    )  # fmt: skip
    known = (evaluator.info.get("train_checksum"), evaluator.info.get("test_checksum"))
    if against is None and ref.checksum not in known:
        what = (
            f"{evaluator.id} was trained on other data than this reference split "
            f"({ref.description}); train an evaluator on this data "
            f"(`fashiongan evaluator train --data ... --out EV`) and pass --evaluator EV"
        )
        if not force_evaluator:
            raise FashionGANError(f"{what}, or score anyway with --force-evaluator")
        log(f"warning: {what}")
        notes.append(f"forced: {what}")
    start = time.perf_counter()
    values = compute(names, ctx)
    with_floors = with_floors and against is None
    floor_values = floors(names, ctx, len(sample)) if with_floors else {}
    if "cas" in names:
        floor_values.update(cas=values["cas_real"], cas_ratio=1.0)
        recipe = dataclasses.asdict(cas_recipe or cas_mod.CAS_RECIPE)
        ctx.notes.append("cas classifier: " + ", ".join(f"{k} {v}" for k, v in recipe.items()))
    results = {
        **values,
        "floors": floor_values,
        "provenance": provenance(ctx, names, split, memorization_samples, start),
    }
    return results, ctx.artifacts
