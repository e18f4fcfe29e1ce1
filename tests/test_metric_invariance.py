"""Relations every metric must keep: the value on a set does not depend on the order of its
samples (for every metric in the registry and every kind of source), a set against itself is at
distance 0, and FID grows with the amount of noise or blur on real images."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_images
from fashiongan.cli import main
from fashiongan.data.csv import write_csv
from fashiongan.data.idx import write_idx
from fashiongan.metrics.evaluate import evaluate
from fashiongan.metrics.evaluator import load_evaluator
from fashiongan.metrics.fid import fid
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.kid import kid
from fashiongan.metrics.order import canonical_order
from fashiongan.metrics.sources import ImageSet
from fashiongan.metrics.suite import METRICS
from test_evaluate import tiny_evaluator, tiny_run  # noqa: F401 - fixtures

PER_CLASS = 12  # 120 images: more than the memorization draw below, 12 per IS split


def _score(source, ev_dir, data, cache, names, **kw):
    return evaluate(
        source,
        metrics=names,
        evaluator=load_evaluator(ev_dir),
        cache_dir=cache,
        data=str(data),
        write=False,
        memorization_samples=40,  # < the set: the draw must not depend on the order
        cas_per_class=PER_CLASS,
        log=lambda s: None,
        **kw,
    ).results


def _same(a: dict, b: dict, keys) -> None:
    for key in keys:
        assert json.dumps(a[key]) == json.dumps(b[key]), key  # exact, NaN and None included


def _orders(n: int) -> dict[str, np.ndarray]:
    return {
        "reversed": np.arange(n)[::-1].copy(),
        "shuffled": np.random.default_rng(7).permutation(n),
    }


@pytest.mark.parametrize("name", METRICS.names())
def test_every_registered_metric_ignores_sample_order(name, tiny_evaluator, tmp_path):  # noqa: F811
    ev_dir, data = tiny_evaluator
    images, labels = synthetic_images(PER_CLASS, seed=5)  # class-sorted
    images[1] = images[0]  # a duplicate: ties must not break the invariance either
    keys = METRICS.get(name).keys
    base = _score(ImageSet(torch.from_numpy(images), torch.from_numpy(labels), "sorted"),
                  ev_dir, data, tmp_path, [name])  # fmt: skip
    for order in _orders(len(images)).values():
        s = ImageSet(torch.from_numpy(images[order]), torch.from_numpy(labels[order]), "x")
        _same(base, _score(s, ev_dir, data, tmp_path, [name]), keys)


def test_inception_score_of_a_class_sorted_set_is_not_collapsed():
    """The defect this guards against: consecutive splits of a class-sorted set hold one class
    each and read IS ≈ 1. Confident, balanced posteriors must read near the ceiling of 10."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(1000) // 100  # class-sorted
    logits = torch.randn(1000, 10, generator=g) + 12 * torch.eye(10)[labels]
    sorted_is = inception_score(logits)
    shuffled = logits[torch.randperm(1000, generator=g)]
    assert inception_score(shuffled) == sorted_is
    assert sorted_is[0] > 9
    assert inception_score(logits, seed=1) != sorted_is  # the split seed is what varies
    assert inception_score(logits, seed=1)[0] == pytest.approx(sorted_is[0], abs=0.05)


def test_kid_and_fid_of_a_set_against_itself():
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert fid(x, x) == pytest.approx(0, abs=1e-9)
    assert fid(x, x.flip(0)) == pytest.approx(0, abs=1e-9)
    mean, _ = kid(x, x, subsets=20, subset_size=100)
    assert abs(mean) < 0.05
    assert kid(x, x.flip(0), 20, 100) == kid(x, x, 20, 100)  # order-free, exactly


def test_canonical_order_is_the_same_for_any_permutation():
    images, labels = synthetic_images(3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    ref = x[canonical_order(x, y)]
    for order in _orders(len(x)).values():
        o = torch.from_numpy(order)
        assert torch.equal(x[o][canonical_order(x[o], y[o])], ref)
    floats = torch.randn(50, 4)
    p = torch.randperm(50)
    assert torch.equal(floats[p][canonical_order(floats[p])], floats[canonical_order(floats)])


def test_kid_subset_size_adapts_with_a_note(tiny_evaluator, tmp_path):  # noqa: F811
    ev_dir, data = tiny_evaluator
    images, labels = synthetic_images(3, seed=2)  # 30 images < the subset size of 1000
    r = _score(ImageSet(torch.from_numpy(images), torch.from_numpy(labels), "small"), ev_dir,
               data, tmp_path, ["kid"])  # fmt: skip
    assert np.isfinite(r["kid"])
    notes = r["provenance"]["notes"]
    assert sum("KID: subsets of 30 images" in n for n in notes) == 1, notes  # not the floor's too


def test_too_few_images_drop_or_refuse_metrics(tiny_evaluator, tmp_path):  # noqa: F811
    from fashiongan.errors import FashionGANError

    ev_dir, data = tiny_evaluator
    images, labels = synthetic_images(1, seed=2)[0][:5], np.arange(5)
    s = ImageSet(torch.from_numpy(images), torch.from_numpy(labels), "five")
    r = _score(s, ev_dir, data, tmp_path, None)
    assert "is" not in r and "precision" not in r and "fid" in r
    assert any("is (needs 10)" in n for n in r["provenance"]["notes"])
    with pytest.raises(FashionGANError, match="needs at least 10 images, got 5"):
        _score(s, ev_dir, data, tmp_path, ["is"])


# --- every source, written class-sorted, scores as its shuffled copy does -------------------

ORDER_SENSITIVE = ["fid", "kid", "is", "prdc", "class_fid", "memorization"]


def _write_npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return path


def _write_idx(path, images, labels):
    write_idx(path / "train-images-idx3-ubyte.gz", images)
    write_idx(path / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return path / "train-images-idx3-ubyte.gz"


def _write_csv(path, images, labels):
    write_csv(path, images, labels)
    return path


def _write_class_pngs(path, images, labels):
    for i, (img, c) in enumerate(zip(images, labels)):
        (path / f"{c}_class").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path / f"{c}_class" / f"{i:04d}.png")
    return path


def _write_flat_pngs(path, images, labels):
    path.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):  # file names in the given order: sorted order = class order
        Image.fromarray(img).save(path / f"{i:04d}.png")
    return path


WRITERS = {
    "npz": (_write_npz, ".npz"),
    "idx": (_write_idx, ""),
    "csv": (_write_csv, ".csv"),
    "class-png-folders": (_write_class_pngs, ""),
    "flat-png-folder": (_write_flat_pngs, ""),
}


def _written(kind, tmp_path, tag, images, labels):
    write, ext = WRITERS[kind]
    path = tmp_path / f"{tag}{ext}"
    if not ext:
        path.mkdir()
    return str(write(path, images, labels))


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_source_kind_ignores_sample_order(kind, tiny_evaluator, tmp_path):  # noqa: F811
    ev_dir, data = tiny_evaluator
    images, labels = synthetic_images(PER_CLASS, seed=3)  # class-sorted
    shuffled = np.random.default_rng(1).permutation(len(images))
    a = _written(kind, tmp_path, "sorted", images, labels)
    b = _written(kind, tmp_path, "shuffled", images[shuffled], labels[shuffled])
    ra = _score(a, ev_dir, data, tmp_path / "cache", ORDER_SENSITIVE)
    rb = _score(b, ev_dir, data, tmp_path / "cache", ORDER_SENSITIVE)
    _same(ra, rb, [k for m in ORDER_SENSITIVE for k in METRICS.get(m).keys])


def test_a_models_per_class_export_ignores_sample_order(tiny_evaluator, tiny_run, tmp_path):  # noqa: F811
    run, (ev_dir, data) = tiny_run, tiny_evaluator
    out = tmp_path / "per-class.npz"
    assert main(["generate", str(run), "--per-class", str(PER_CLASS), "--out", str(out)]) == 0
    with np.load(out) as z:
        images, labels = z["images"], z["labels"]
    assert (np.diff(labels) >= 0).all()  # the export is class-sorted
    shuffled = np.random.default_rng(2).permutation(len(images))
    b = _write_npz(tmp_path / "shuffled.npz", images[shuffled], labels[shuffled])
    ra = _score(str(out), ev_dir, data, tmp_path / "cache", ORDER_SENSITIVE)
    rb = _score(str(b), ev_dir, data, tmp_path / "cache", ORDER_SENSITIVE)
    _same(ra, rb, [k for m in ORDER_SENSITIVE for k in METRICS.get(m).keys])


def test_in_training_evaluation_pairs_each_image_with_its_label(tiny_evaluator, tiny_run, tmp_path):  # noqa: F811
    """--eval-every scores the canonically ordered set: its label accuracy must pair each image
    with its own requested class, as a direct computation in the given order does."""
    from fashiongan.metrics.label_accuracy import label_accuracy
    from fashiongan.sampling import latents, load_generator
    from fashiongan.training.periodic_eval import EVAL_SEED, PeriodicEval

    ev_dir, data = tiny_evaluator
    gen = load_generator(tiny_run)
    periodic = PeriodicEval(100, tmp_path, str(data), None, torch.device("cpu"), str(ev_dir))
    row = periodic(gen)
    y = gen.labels(n=100)
    _, logits = load_evaluator(ev_dir).evaluate(gen.images(latents(EVAL_SEED, 100, gen.z_dim), y))
    assert row["label_accuracy"] == label_accuracy(logits, y, 10)["label_accuracy"]
