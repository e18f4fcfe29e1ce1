"""Finding and loading data sets, class names, subsets, resizing, batching."""

import os

import numpy as np
import pytest
import torch

from fashiongan.data import load_dataset, parse_class
from fashiongan.data.datasets import (
    FASHION_CLASSES,
    Batcher,
    find_data,
    search_path,
    to_float,
    to_uint8,
)
from fashiongan.data.idx import write_idx
from fashiongan.errors import FashionGANError


def test_load_idx_dir_and_csv_agree(idx_dir, csv_file):
    d = load_dataset(str(idx_dir), "train")
    assert d.images.dtype == torch.uint8 and d.images.shape == (200, 28, 28)
    assert d.labels.dtype == torch.int64 and d.labels.bincount().tolist() == [20] * 10
    assert d.class_names == tuple(map(str, range(10)))  # not Fashion-MNIST: numeric names
    c = load_dataset(str(csv_file))
    assert c.images.shape == (50, 28, 28)
    assert load_dataset(str(idx_dir), "test").images.shape == (100, 28, 28)


def test_class_names_flag(idx_dir):
    assert load_dataset(str(idx_dir), class_names="fashion").class_names == FASHION_CLASSES
    with pytest.raises(FashionGANError, match="--class-names"):
        load_dataset(str(idx_dir), class_names="klingon")


def test_search_order(tmp_path, idx_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert search_path(str(idx_dir))[0] == idx_dir
    found = find_data(None, "train", env_dir=str(idx_dir))
    assert found[0].parent == idx_dir
    # ./data is searched before the cache and the system directory
    (tmp_path / "data").mkdir()
    images = np.zeros((10, 28, 28), np.uint8)
    write_idx(tmp_path / "data" / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "data" / "train-labels-idx1-ubyte", np.arange(10, dtype=np.uint8))
    assert (
        find_data(None, "train")[0].resolve()
        == (tmp_path / "data" / "train-images-idx3-ubyte").resolve()
    )
    assert find_data(None, "train", env_dir=str(idx_dir))[0].parent == idx_dir


def test_not_found_lists_places_and_fixes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("fashiongan.data.datasets.SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(FashionGANError) as e:
        find_data(None, "train", env_dir=str(tmp_path / "env"))
    msg = str(e.value)
    for text in (
        "env",
        "data",
        ".cache/fashiongan",
        "nowhere",
        "apt-get install dataset-fashion-mnist",
        "fashiongan download",
        "--data PATH",
    ):
        assert text in msg
    assert "\n" not in msg


def test_bad_data_paths(tmp_path, idx_dir):
    with pytest.raises(FashionGANError, match="no such file or directory"):
        find_data(str(tmp_path / "missing"), "train")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(FashionGANError, match="expected a directory of IDX files or a .csv"):
        find_data(str(tmp_path / "x.txt"), "train")
    with pytest.raises(FashionGANError, match="no test split there"):
        empty = tmp_path / "empty"
        empty.mkdir()
        find_data(str(empty), "test")
    with pytest.raises(FashionGANError, match="unknown split"):
        find_data(str(idx_dir), "valid")


def test_mixed_gz_and_half_pairs(tmp_path, idx_dir):
    import gzip

    plain = tmp_path / "mixed"
    plain.mkdir()
    (plain / "train-images-idx3-ubyte.gz").write_bytes(
        (idx_dir / "train-images-idx3-ubyte.gz").read_bytes()
    )
    (plain / "train-labels-idx1-ubyte").write_bytes(
        gzip.decompress((idx_dir / "train-labels-idx1-ubyte.gz").read_bytes())
    )
    assert len(load_dataset(str(plain))) == 200
    (plain / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(
        FashionGANError, match="found train-images-idx3-ubyte.gz but no train-labels"
    ):
        load_dataset(str(plain))


def test_count_mismatch_and_bad_labels(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(FashionGANError, match="5 images but train-labels-idx1-ubyte has 4 labels"):
        load_dataset(str(tmp_path))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 12], np.uint8))
    with pytest.raises(FashionGANError, match="label 12 is outside 0..9"):
        load_dataset(str(tmp_path))
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 20), np.uint8))
    with pytest.raises(FashionGANError, match="square images"):
        load_dataset(str(tmp_path))


def test_subset_is_balanced_seeded_and_checked(idx_dir):
    a = load_dataset(str(idx_dir), subset=50, seed=1)
    b = load_dataset(str(idx_dir), subset=50, seed=1)
    c = load_dataset(str(idx_dir), subset=50, seed=2)
    assert a.labels.bincount().tolist() == [5] * 10
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert load_dataset(str(idx_dir), subset=13).labels.bincount().tolist() == [2, 2, 2] + [1] * 7
    with pytest.raises(FashionGANError, match="--subset 5000"):
        load_dataset(str(idx_dir), subset=5000)


def test_resize_once_to_64(idx_dir):
    d = load_dataset(str(idx_dir), image_size=64)
    assert d.images.shape == (200, 64, 64) and d.images.dtype == torch.uint8
    # the bright bar of class 0 (rows 2..5 of 28) lands near rows 4..13 of 64
    bar = d.images[d.labels == 0].float().mean(0)
    assert bar[4:12].mean() > 150 and bar[40:].mean() < 40


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sneaker", 7),
        ("7", 7),
        ("Ankle-Boot", 9),
        ("ankle_boot", 9),
        ("ankle boot", 9),
        ("t-shirt", 0),
        ("top", 0),
        ("T-shirt/top", 0),
        ("bag", 8),
        ("0", 0),
    ],
)
def test_parse_class(text, expected):
    assert parse_class(text, FASHION_CLASSES) == expected


@pytest.mark.parametrize("text", ["sock", "10", "-1", ""])
def test_parse_class_unknown_lists_choices(text):
    with pytest.raises(FashionGANError, match="7=sneaker"):
        parse_class(text, FASHION_CLASSES)


def test_float_uint8_round_trip():
    u = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    x = to_float(u)
    assert x.shape == (1, 1, 16, 16) and x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8(x), u)


def test_batcher_covers_each_epoch_once_and_resumes_exactly():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 2, 2).contiguous()
    labels = torch.arange(10)
    b = Batcher(images, labels, batch_size=3, seed=5, device=torch.device("cpu"))
    epoch0 = torch.cat([b.next()[1] for _ in range(3)])
    assert len(set(epoch0.tolist())) == 9  # 3 full batches, the partial one dropped
    state = b.state_dict()
    rest = [b.next()[1] for _ in range(5)]
    b2 = Batcher(images, labels, batch_size=3, seed=5, device=torch.device("cpu"))
    b2.load_state_dict(state)
    assert all(torch.equal(x, b2.next()[1]) for x in rest)
    x, y = b.next()
    assert x.dtype == torch.float32 and x.shape == (3, 1, 2, 2)
    assert torch.allclose(x[:, 0, 0, 0], y.float() / 127.5 - 1)  # images follow their labels
    with pytest.raises(FashionGANError, match="--batch-size 11"):
        Batcher(images, labels, 11, 0, torch.device("cpu"))


def test_real_splits_are_recognised(real_data):
    train = load_dataset(str(real_data), "train")
    test = load_dataset(str(real_data), "test")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.class_names == FASHION_CLASSES and test.labels.bincount().tolist() == [1000] * 10
    assert os.path.samefile(train.source, real_data)
