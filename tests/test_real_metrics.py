"""The shipped evaluator and the metrics on the real Fashion-MNIST (installed by .ci/run): real
test images score at the real floor, noise and a collapsed set score clearly badly."""

import json

import numpy as np
import pytest
import torch

from fashiongan.data.datasets import FASHION_CHECKSUMS, load_dataset
from fashiongan.fileio import sha256_file
from fashiongan.metrics.evaluate import evaluate
from fashiongan.metrics.evaluator import WEIGHTS_DIR, accuracy, load_evaluator
from fashiongan.metrics.fid import fid
from fashiongan.metrics.sources import ImageSet

N = 2000  # judged images per synthetic set: floors cached once at this n


@pytest.fixture(scope="module")
def shipped():
    return load_evaluator()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _evaluate(image_set, cache, real_data, **kw):
    return evaluate(
        image_set,
        cache_dir=cache,
        data=str(real_data),
        write=False,
        memorization_samples=500,
        log=lambda s: None,
        **kw,
    ).results


def test_shipped_evaluator_is_what_its_record_says(shipped, real_data):
    info = json.loads((WEIGHTS_DIR / "evaluator.json").read_text())
    assert sha256_file(WEIGHTS_DIR / "evaluator.safetensors") == info["sha256"]
    assert info["train_checksum"] == FASHION_CHECKSUMS["train"]
    assert info["test_checksum"] == FASHION_CHECKSUMS["test"]
    test = load_dataset(str(real_data), "test")
    acc = accuracy(shipped.net, test.images, test.labels)
    assert acc >= 0.93
    assert acc == pytest.approx(info["test_accuracy"], abs=1e-6)
    assert (WEIGHTS_DIR / "evaluator.safetensors").stat().st_size < 5_000_000


def test_real_test_split_scores_at_the_floor(shipped, cache, real_data):
    test = load_dataset(str(real_data), "test")
    real = ImageSet(test.images, test.labels, "real test split")
    vs_test = _evaluate(real, cache, real_data, metrics=["fid", "kid", "label_accuracy"])
    assert vs_test["fid"] == pytest.approx(0, abs=1e-6)
    assert vs_test["fid"] < vs_test["floors"]["fid"]
    assert vs_test["label_accuracy"] == pytest.approx(shipped.info["test_accuracy"], abs=1e-6)
    vs_train = _evaluate(real, cache, real_data, metrics=["fid", "kid", "is"], reference="train")
    # the floor against train *is* the test split against train
    assert vs_train["fid"] == pytest.approx(vs_train["floors"]["fid"], rel=1e-9)
    assert vs_train["fid"] < 5 and abs(vs_train["kid"]) < 0.05
    assert vs_train["is"] > 7  # near the ceiling of 10 for a 94% classifier


def test_noise_and_collapse_score_clearly_badly(shipped, cache, real_data):
    test = load_dataset(str(real_data), "test")
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(N) % 10
    noise = ImageSet(torch.randint(0, 256, (N, 28, 28), dtype=torch.uint8, generator=g), labels,
                     "uniform noise")  # fmt: skip
    sneakers = test.images[test.labels == 7][: N // 2]
    collapsed = ImageSet(sneakers.repeat(2, 1, 1), labels, "sneakers for every class")
    sample = test.images[torch.randperm(len(test), generator=g)[:N]]
    fair = ImageSet(sample, None, f"{N} real test images")
    metrics = ["fid", "kid", "is", "prdc", "label_accuracy", "class_histogram"]
    r_noise = _evaluate(noise, cache, real_data, metrics=metrics)
    r_coll = _evaluate(collapsed, cache, real_data, metrics=metrics)
    r_fair = _evaluate(fair, cache, real_data, metrics=["fid", "prdc", "class_histogram"])
    floor = r_noise["floors"]
    assert r_fair["fid"] < 2 * floor["fid"] + 1
    for bad in (r_noise, r_coll):
        assert bad["fid"] > 20 * floor["fid"] + 10
        assert bad["kid"] > 20 * abs(floor["kid"]) + 0.01
        assert bad["label_accuracy"] < 0.2
        assert bad["recall"] < 0.2 and bad["coverage"] < 0.2
    # noise lands in one corner of feature space that lies inside some real outlier's k-NN
    # ball: k-NN precision is fooled (measured 0.99), density and coverage are not
    assert r_noise["coverage"] < 0.05 and r_noise["density"] < 0.6 * floor["density"]
    assert r_coll["precision"] > 0.5  # real sneakers: faithful, but one mode
    assert r_coll["class_entropy"] < 0.3 and r_fair["class_entropy"] > 2.2
    assert r_coll["is"] < 1.2 and r_fair["recall"] > 0.5


def test_memorization_spots_copies_of_training_images(shipped, cache, real_data):
    train = load_dataset(str(real_data), "train")
    test = load_dataset(str(real_data), "test")
    copies = ImageSet(train.images[:500], None, "copies of training images")
    fresh = ImageSet(test.images[:500], None, "unseen real images")
    r_copy = _evaluate(copies, cache, real_data, metrics=["memorization"])
    r_fresh = _evaluate(fresh, cache, real_data, metrics=["memorization"])
    assert r_copy["near_copies"] == 1.0 and r_copy["nn_pixel"] == 0.0
    assert r_fresh["near_copies"] < 0.05 and r_fresh["nn_pixel"] > 0.03
    assert r_fresh["floors"]["near_copies"] == pytest.approx(0.01, abs=0.01)
    assert np.isfinite(r_fresh["nn_feature"]) and r_copy["nn_feature"] < 1e-3


def test_inception_score_of_the_class_sorted_test_split(shipped, cache, real_data):
    """The landed defect read 1.249 for the sorted split and 8.530 for the shipped order."""
    test = load_dataset(str(real_data), "test")
    order = torch.argsort(test.labels, stable=True)
    as_shipped = _evaluate(ImageSet(test.images, None, "as shipped"), cache, real_data,
                           metrics=["is"])  # fmt: skip
    by_class = _evaluate(ImageSet(test.images[order], None, "sorted"), cache, real_data,
                         metrics=["is"])  # fmt: skip
    assert by_class["is"] == as_shipped["is"] and by_class["is_std"] == as_shipped["is_std"]
    assert as_shipped["is"] > 8


def _blur(images: torch.Tensor, radius: int) -> torch.Tensor:
    x = images[:, None].float()
    k = 2 * radius + 1
    x = torch.nn.functional.avg_pool2d(x, k, stride=1, padding=radius, count_include_pad=False)
    return x[:, 0].round().to(torch.uint8)


def test_fid_grows_with_noise_and_blur(shipped, real_data):
    test = load_dataset(str(real_data), "test")
    judged, reference = test.images[:N], test.images[N:]
    ref_features, _ = shipped.evaluate(reference)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(judged.shape, generator=g)

    def fid_of(images):
        return fid(shipped.evaluate(images)[0], ref_features)

    noisy = [fid_of((judged.float() + s * noise).clamp(0, 255).round().to(torch.uint8))
             for s in (0, 10, 25, 50, 100)]  # fmt: skip
    blurred = [fid_of(_blur(judged, r)) for r in (0, 1, 2, 3)]
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy
    assert all(a < b for a, b in zip(blurred, blurred[1:])), blurred
    assert fid_of(judged) == noisy[0] and fid(ref_features, ref_features) == pytest.approx(
        0, abs=1e-6
    )
