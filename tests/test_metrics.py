"""Metric functions against closed forms and reference implementations (scipy, prdc)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from fashiongan.metrics.fid import class_fid, fid, frechet_distance, gaussian_stats
from fashiongan.metrics.inception_score import inception_score
from fashiongan.metrics.kid import kid
from fashiongan.metrics.label_accuracy import class_histogram, confusion_matrix, label_accuracy
from fashiongan.metrics.memorization import memorization, nearest, pixel_nn
from fashiongan.metrics.precision_recall import kth_neighbour_distance, prdc


def _random_cov(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_scipy_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_fid_on_features_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 32)) @ rng.standard_normal((32, 32))
    b = rng.standard_normal((400, 32)) * 1.5 + 0.3
    expected = _scipy_fid(*gaussian_stats(a), *gaussian_stats(b))
    assert fid(a, b) == pytest.approx(expected, rel=1e-6)


def test_fid_closed_forms():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 8))
    assert abs(fid(x, x)) < 1e-8  # identical sets
    shift = np.arange(8) / 4.0
    assert fid(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)  # |Δμ|²
    # two isotropic Gaussians: d² = |Δμ|² + d (σ1 − σ2)²
    mu1, mu2 = np.zeros(8), np.ones(8)
    value = frechet_distance(mu1, 4 * np.eye(8), mu2, 9 * np.eye(8))
    assert value == pytest.approx(8 + 8 * (2 - 3) ** 2, rel=1e-12)


def test_fid_rejects_bad_shapes():
    with pytest.raises(ValueError):
        gaussian_stats(np.zeros((1, 4)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_class_fid_groups_by_label():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((600, 4))
    la = np.repeat([0, 1, 2], 200)
    b = a.copy()
    b[la == 1] += 1.0  # only class 1 moves
    values = class_fid(a, la, b, la, 4)
    assert values[0] == pytest.approx(0, abs=1e-8) and values[2] == pytest.approx(0, abs=1e-8)
    assert values[1] == pytest.approx(4.0, rel=1e-9)
    assert values[3] is None  # class 3 absent


def _mmd_reference(x, y):
    """Plain-loop unbiased MMD² with k = (x·y/d + 1)³."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_kid_matches_plain_loop_and_is_near_zero_for_same_distribution():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5)) + 0.5
    mean, std = kid(x, y, subsets=1, subset_size=30)
    assert mean == pytest.approx(_mmd_reference(x, y), rel=1e-9) and std == 0
    same = kid(rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8)), 20, 500)
    far = kid(rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8)) + 1, 20, 500)
    assert abs(same[0]) < 3 * same[1] + 1e-3 and far[0] > 50 * max(same[1], 1e-4)


def test_inception_score_bounds():
    n, c = 1000, 10
    confident_balanced = torch.full((n, c), -30.0)
    confident_balanced[torch.arange(n), torch.arange(n) % c] = 30.0
    # one split holds the whole balanced set: exactly the ceiling; 10 random splits of 100 are
    # each a little unbalanced, so a little under it
    assert inception_score(confident_balanced, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    assert 9.3 < inception_score(confident_balanced)[0] < 10.0
    one_class = torch.full((n, c), -30.0)
    one_class[:, 3] = 30.0
    assert inception_score(one_class)[0] == pytest.approx(1.0, abs=1e-6)
    uniform = torch.zeros(n, c)
    assert inception_score(uniform) == pytest.approx((1.0, 0.0), abs=1e-9)


def test_prdc_matches_reference_package():
    prdc_ref = pytest.importorskip("prdc")  # a test dependency, installed by .ci/run
    rng = np.random.default_rng(4)
    real = rng.standard_normal((300, 16)).astype(np.float32)
    fake = (rng.standard_normal((250, 16)) * 0.8 + 0.2).astype(np.float32)
    ours = prdc(real, fake, k=5)
    theirs = prdc_ref.compute_prdc(real, fake, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-9), key


def test_prdc_chunking_is_exact(monkeypatch):
    import fashiongan.metrics.precision_recall as pr

    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((97, 6)), rng.standard_normal((89, 6))
    whole = pr.prdc(real, fake)
    monkeypatch.setattr(pr, "CHUNK", 10)
    assert pr.prdc(real, fake) == whole


def test_prdc_mode_collapse_toy():
    """Fakes that all sit on one of ten real clusters: precise but with little recall."""
    rng = np.random.default_rng(6)
    centers = rng.standard_normal((10, 8)) * 10
    real = np.concatenate([c + rng.standard_normal((200, 8)) for c in centers])
    collapsed = centers[0] + rng.standard_normal((2000, 8)) * 0.8
    good = np.concatenate([c + rng.standard_normal((200, 8)) for c in centers])
    bad, ok = prdc(real, collapsed), prdc(real, good)
    assert bad["precision"] > 0.9 and bad["recall"] < 0.15 and bad["coverage"] < 0.15
    assert ok["precision"] > 0.9 and ok["recall"] > 0.9 and ok["coverage"] > 0.9


def test_kth_neighbour_distance_small_case():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    # sorted distances from 0: 0, 1, 3, 7 → k=1 → 1, k=2 → 3
    assert kth_neighbour_distance(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert kth_neighbour_distance(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError):
        kth_neighbour_distance(x, 4)


def test_label_accuracy_and_confusion():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    logits = np.eye(3)[predicted] * 5
    out = label_accuracy(logits, labels, 4)
    assert out["label_accuracy"] == pytest.approx(4 / 6)
    assert out["class_accuracy"] == [0.5, 1.0, 0.5, None]
    assert out["confusion"].tolist()[0] == [1, 1, 0, 0]
    assert confusion_matrix(labels, predicted, 3).sum() == 6


def test_class_histogram_entropy():
    even = np.eye(10)[np.arange(1000) % 10]
    assert class_histogram(even, 10)["class_entropy"] == pytest.approx(np.log(10))
    single = np.eye(10)[np.zeros(50, int)]
    out = class_histogram(single, 10)
    assert out["class_entropy"] == 0.0 and out["class_histogram"][0] == 1.0


def test_nearest_and_memorization_find_copies():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=g)
    d, idx = nearest(train[:5].reshape(5, -1).float(), train.reshape(300, -1).float())
    assert idx.tolist() == [0, 1, 2, 3, 4] and float(d.max()) < 1e-2
    queries = torch.rand(7, 784, generator=g) * 255
    brute = torch.cdist(queries.double(), train.reshape(300, -1).double())
    d2, idx2 = nearest(queries, train.reshape(300, -1).float())
    assert idx2.tolist() == brute.argmin(1).tolist()
    assert d2.double().numpy() == pytest.approx(brute.min(1).values.numpy(), rel=1e-4)
    copies = train[:50]
    fresh = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8, generator=g)
    feats = train.reshape(300, -1).float()[:, :16]
    pix, _ = pixel_nn(fresh, train)
    threshold = float(pix.min()) / 2
    out = memorization(
        torch.cat([copies, fresh]),
        torch.cat([feats[:50], fresh.reshape(50, -1).float()[:, :16]]),
        train,
        feats,
        threshold,
    )
    assert out["near_copies"] == pytest.approx(0.5)
    assert out["pixel_distances"][:50].max() < 1e-3


def test_swd_relations():
    """SWD: 0 for a set against itself, the same for any order and either way round, growing
    with the corruption, and in one dimension the 1-D Wasserstein distance (scipy)."""
    from scipy.stats import wasserstein_distance

    from fashiongan.metrics.swd import swd

    g = torch.Generator().manual_seed(0)
    x = torch.randn(800, 12, generator=g)
    assert swd(x, x) == 0.0
    assert swd(x, x[torch.randperm(800, generator=g)]) == pytest.approx(0.0, abs=1e-12)
    y = x + 0.3 * torch.randn(800, 12, generator=g)
    assert swd(x, y) == pytest.approx(swd(y, x), rel=1e-12)
    noisy = [swd(x, x + s * torch.randn(800, 12, generator=g)) for s in (0.1, 0.3, 1.0, 3.0)]
    assert noisy == sorted(noisy) and noisy[0] > 0
    a, b = torch.randn(1000, 1, generator=g), 0.5 + 2 * torch.randn(1000, 1, generator=g)
    exact = wasserstein_distance(a[:, 0].numpy(), b[:, 0].numpy())
    assert swd(a, b, directions=4) == pytest.approx(exact, rel=0.02)
