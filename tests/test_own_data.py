"""Users' own images: the layouts (class folders, flat + labels.csv, NPZ), the channel and size
rules, the held-out split, every bad input's one-line message, and end to end on a real small
set (scikit-learn's 8×8 digits) and a colour set (Fashion-MNIST garments tinted by class)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashiongan.cli import main
from fashiongan.data.datasets import load_dataset
from fashiongan.data.own import holdout_split
from fashiongan.errors import FashionGANError
from fashiongan.metrics.order import canonical_order

# a colour per class: colour carries the label, so G must learn it
TINTS = np.array(
    [[255, 64, 64], [64, 255, 64], [64, 64, 255], [255, 255, 64], [255, 64, 255],
     [64, 255, 255], [255, 160, 64], [160, 64, 255], [160, 255, 64], [255, 255, 255]],
    np.float32,
) / 255  # fmt: skip


def digits():
    """scikit-learn's 1,797 labelled 8×8 digits, as uint8 0..255."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.round(d.images * (255 / 16)).astype(np.uint8), d.target.astype(np.int64)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    images, labels = digits()
    for i, (im, y) in enumerate(zip(images, labels)):
        (root / str(y)).mkdir(exist_ok=True)
        Image.fromarray(im).save(root / str(y) / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def tinted_folder(tmp_path_factory, real_data) -> Path:
    """500 Fashion-MNIST test garments, each tinted by its class, saved as 40×48 RGB PNGs."""
    root = tmp_path_factory.mktemp("tinted")
    ds = load_dataset(str(real_data), "test", subset=500)
    for i, (im, y) in enumerate(zip(ds.images.numpy(), ds.labels.numpy())):
        (root / f"c{y}").mkdir(exist_ok=True)
        rgb = (im[:, :, None] * TINTS[y]).round().astype(np.uint8)
        Image.fromarray(rgb).resize((40, 48), Image.Resampling.BICUBIC).save(
            root / f"c{y}" / f"{i:04d}.png"
        )
    return root


def sorted_rows(images: torch.Tensor, labels: torch.Tensor):
    order = canonical_order(images, labels)
    return images[order], labels[order]


def test_digits_folder_and_npz_give_the_same_images_labels_and_split(digits_folder, tmp_path):
    images, labels = digits()
    npz = tmp_path / "digits.npz"
    np.savez(npz, images=images, labels=labels)
    for split in ("train", "test"):
        a = load_dataset(str(digits_folder), split, image_size=28, cache_dir=tmp_path / "c")
        b = load_dataset(str(npz), split, image_size=28)
        assert a.channels == b.channels == 1 and a.images.shape[1:] == (28, 28)
        assert a.class_names == b.class_names == tuple(str(i) for i in range(10))
        assert a.checksum == b.checksum  # the same decoded set: the same fingerprint
        for x, y in zip(sorted_rows(a.images, a.labels), sorted_rows(b.images, b.labels)):
            assert torch.equal(x, y)
    train = load_dataset(str(digits_folder), "train", image_size=28)
    test = load_dataset(str(digits_folder), "test", image_size=28)
    assert len(train) + len(test) == len(images)
    assert not set(map(bytes, train.images.numpy())) & set(map(bytes, test.images.numpy()))
    counts = np.bincount(labels)
    assert test.labels.bincount().tolist() == [round(0.1 * c) for c in counts]  # stratified


def test_holdout_split_is_seeded_stratified_and_keeps_every_class_in_training():
    labels = np.repeat(np.arange(4), [1, 2, 10, 100])
    a, b = holdout_split(labels, 0.2, 0), holdout_split(labels, 0.2, 0)
    assert (a == b).all() and not (a == holdout_split(labels, 0.2, 1)).all()
    assert [int(a[labels == c].sum()) for c in range(4)] == [0, 1, 2, 20]
    assert not holdout_split(labels, 0.0, 0).any()
    grown = [int(holdout_split(labels, f, 0).sum()) for f in (0.1, 0.2, 0.4, 0.8)]
    assert grown == sorted(grown)  # monotone in the fraction


def test_colour_is_kept_forced_or_collapsed_by_the_stated_rule(tinted_folder, tmp_path):
    ds = load_dataset(str(tinted_folder), image_size=32)
    assert ds.channels == 3 and ds.images.shape[1:] == (3, 32, 32)
    # each class's mean colour points along its tint (garments are bright on black)
    for c in (0, 1, 2):
        mean = ds.images[ds.labels == c].float().mean((0, 2, 3))
        assert int(mean.argmax()) == int(np.argmax(TINTS[c]))
    gray = load_dataset(str(tinted_folder), image_size=32, channels=1)
    assert gray.channels == 1 and gray.images.shape[1:] == (32, 32)
    # gray images saved as RGB with R = G = B, with one true L image and one RGBA: grayscale
    mixed = tmp_path / "mixed"
    for k in range(2):
        (mixed / f"k{k}").mkdir(parents=True)
        Image.new("RGB", (16, 16), (90 + k,) * 3).save(mixed / f"k{k}" / "rgb.png")
        Image.new("L", (16, 16), 30 + k).save(mixed / f"k{k}" / "l.png")
        rgba = Image.new("RGBA", (16, 16), (200 + k,) * 3 + (128,))  # half transparent on black
        rgba.save(mixed / f"k{k}" / "rgba.png")
    m = load_dataset(str(mixed), image_size=16, val_fraction=0)
    assert m.channels == 1
    assert sorted(m.images[m.labels == 0][:, 0, 0].tolist()) == [30, 90, 100]
    Image.new("RGB", (16, 16), (200, 10, 10)).save(mixed / "k0" / "red.png")
    assert load_dataset(str(mixed), image_size=16, val_fraction=0).channels == 3


def test_fit_crop_keeps_the_centre_and_pad_keeps_everything(tmp_path):
    root = tmp_path / "shapes"
    for k in range(2):
        (root / f"k{k}").mkdir(parents=True)
        tall = np.zeros((40, 20), np.uint8)  # 20 wide, 40 tall: white top half, gray bottom
        tall[:20], tall[20:] = 255, 100 + k
        Image.fromarray(tall).save(root / f"k{k}" / "tall.png")
    crop = load_dataset(str(root), image_size=20, val_fraction=0).images[0]
    pad = load_dataset(str(root), image_size=20, val_fraction=0, fit="pad").images[0]
    # the centre 20 rows of 40, unresized: 10 white then 10 gray
    assert (crop[:10] == 255).all() and (crop[10:] == 100).all()
    assert (pad[:, :4] == 0).all() and (pad[:, -4:] == 0).all()  # black bars left and right
    assert pad[:9, 10].float().mean() > 200 and 90 < pad[-9:, 10].float().mean() < 110


def write_set(root: Path, per_class=3, classes=("a", "b"), size=12) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("L", (size, size), 10 + 40 * c + i).save(root / name / f"{i}.png")
    return root


def cli_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def train_argv(data, out):
    return ["train", "--data", str(data), "--out", str(out), "--steps", "1", "--batch-size", "2",
            "--width", "0.25", "--z-dim", "8", "--eval-every", "0", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda r: (r / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
         "1.png: not a read"),
        (lambda r: (r / "a" / "1.png").write_bytes((r / "a" / "0.png").read_bytes()[:-30]),
         "1.png: not a readable image"),
        (lambda r: (r / "c").mkdir(), "class folder 'c' holds no images"),
        (lambda r: (r / "b" / "2.png").write_bytes((r / "b" / "0.png").read_bytes()),
         "2.png: a byte-identical copy of"),
        (lambda r: Image.new("L", (5, 30), 7).save(r / "a" / "small.png"),
         "small.png: 5×30 is smaller than --min-size 8"),
        (lambda r: Image.new("L", (9, 9), 7).save(r / "stray.png"),
         "both class folders (a, ...) and loose images (stray.png, ...)"),
    ],
    ids=["unreadable", "truncated", "empty-class", "duplicate", "too-small", "loose-images"],
)  # fmt: skip
def test_each_bad_file_is_one_line_naming_it_and_nothing_is_cached(
    damage, expected, tmp_path, capsys, monkeypatch
):
    root = write_set(tmp_path / "set")
    damage(root)
    monkeypatch.setenv("FASHIONGAN_CACHE", str(tmp_path / "cache"))
    err = cli_error(capsys, train_argv(root, tmp_path / "run"))
    assert expected in err
    assert not (tmp_path / "cache" / "datasets").exists() or not any(
        (tmp_path / "cache" / "datasets").iterdir()
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_skip_bad_leaves_bad_files_out_and_counts_them(tmp_path, capsys):
    root = write_set(tmp_path / "set", per_class=4)
    (root / "a" / "1.png").write_bytes(b"not an image")
    (root / "b" / "3.png").write_bytes((root / "b" / "0.png").read_bytes())
    ds = load_dataset(str(root), image_size=12, val_fraction=0, skip_bad=True)
    assert len(ds) == 6 and ds.labels.bincount().tolist() == [3, 3]
    assert "1 unreadable or too small, 1 duplicate" in capsys.readouterr().out


def test_label_and_class_errors(tmp_path, capsys):
    one = write_set(tmp_path / "one", classes=("only",))
    assert "one class only ('only')" in cli_error(capsys, train_argv(one, tmp_path / "r1"))
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.new("L", (10, 10), 20 * i).save(flat / f"{i}.png")
    (flat / "classes.txt").write_text("shoe\nbag\n")
    (flat / "labels.csv").write_text("file,label\n0.png,shoe\n1.png,bag\n2.png,hat\n3.png,bag\n")
    err = cli_error(capsys, train_argv(flat, tmp_path / "r2"))
    assert "label 'hat' is not a class (shoe, bag)" in err
    (flat / "labels.csv").write_text("file,label\n0.png,shoe\n1.png,bag\n2.png,1\n3.png,0\n")
    ds = load_dataset(str(flat), image_size=10, val_fraction=0)
    assert ds.class_names == ("shoe", "bag")
    assert dict(zip(ds.images[:, 0, 0].tolist(), ds.labels.tolist())) == {0: 0, 20: 1, 40: 1, 60: 0}
    (flat / "labels.csv").write_text("name,class\n0.png,shoe\n")
    assert "expected a header row 'file,label'" in cli_error(
        capsys, train_argv(flat, tmp_path / "r3")
    )


def test_unlabelled_folder_trains_unconditional_only(tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(6):
        Image.new("L", (10, 10), 30 * i).save(flat / f"{i}.png")
    assert "train an unconditional model with --cond none" in cli_error(
        capsys, train_argv(flat, tmp_path / "r")
    )
    assert main(train_argv(flat, tmp_path / "r") + ["--cond", "none"]) == 0
    state = torch.load(tmp_path / "r" / "checkpoints" / "final.pt", weights_only=False)
    assert state["class_names"] == ["all"]


def test_a_set_too_big_for_memory_is_refused_with_the_number(tmp_path, monkeypatch):
    root = write_set(tmp_path / "set")
    monkeypatch.setattr("fashiongan.data.own.memory_budget", lambda: 1000)
    with pytest.raises(FashionGANError, match=r"6 images at 64×64×3 need 0\.00 GiB"):
        load_dataset(str(root), image_size=64)


def test_the_decoded_set_is_cached_and_a_changed_file_is_read_again(tmp_path):
    root = write_set(tmp_path / "set")
    cache = tmp_path / "cache"
    a = load_dataset(str(root), image_size=12, val_fraction=0, cache_dir=cache)
    assert len(list((cache / "datasets").iterdir())) == 1
    assert torch.equal(
        a.images, load_dataset(str(root), image_size=12, val_fraction=0, cache_dir=cache).images
    )
    Image.new("L", (12, 12), 250).save(root / "a" / "0.png")
    b = load_dataset(str(root), image_size=12, val_fraction=0, cache_dir=cache)
    assert b.checksum != a.checksum and int(b.images.max()) == 250


def test_colour_folder_at_64_trains_samples_and_is_evaluated_in_its_own_space(
    tinted_folder, tmp_path, capsys, monkeypatch
):
    """The issue's 'done when', from the CLI; then the same through the Python API."""
    import fashiongan

    monkeypatch.setenv("FASHIONGAN_CACHE", str(tmp_path / "cache"))
    run, ev = tmp_path / "run", tmp_path / "ev"
    argv = train_argv(tinted_folder, run)
    argv[argv.index("--steps") + 1], argv[argv.index("--batch-size") + 1] = "20", "16"
    assert main(argv + ["--model", "dcgan64", "--augment", "ada"]) == 0
    state = torch.load(run / "checkpoints" / "final.pt", weights_only=False)
    assert state["channels"] == 3 and state["resolution"] == 64 and "ada" in state
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("augment_p" in r for r in rows if "loss_d" in r)
    assert main(["generate", str(run), "--per-class", "2", "--out", str(tmp_path / "g.npz")]) == 0
    with np.load(tmp_path / "g.npz") as z:
        assert z["images"].shape == (20, 64, 64, 3) and sorted(set(z["labels"])) == list(range(10))
    # the channels travel with an exported generator; IDX and CSV (grayscale only) refuse
    portable = tmp_path / "g.safetensors"
    assert main(["export", str(run), "--out", str(portable)]) == 0
    assert fashiongan.load_generator(portable).sample(2, seed=0).shape == (2, 3, 64, 64)
    assert "holds grayscale images and these are colour" in cli_error(
        capsys,
        [
            "generate",
            str(run),
            "--per-class",
            "1",
            "--format",
            "idx",
            "--out",
            str(tmp_path / "idx"),
        ],  # fmt: skip
    )
    assert main(["evaluator", "train", "--data", str(tinted_folder), "--out", str(ev),
                 "--epochs", "6"]) == 0  # fmt: skip
    info = json.loads((ev / "evaluator.json").read_text())
    assert info["input"] == {"channels": 3, "size": 32, "n_classes": 10}
    assert info["test_accuracy"] > 0.5  # colour alone tells the class
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["evaluate", str(run), "--evaluator", str(ev), "--data", str(tinted_folder),
                 "--num-samples", "100", "--out", str(out),
                 "--metrics", "fid,label_accuracy"]) == 0  # fmt: skip
    result = json.loads((out / "metrics.json").read_text())
    assert result["provenance"]["evaluator"].startswith("cnn-")
    assert "held-out part" in result["provenance"]["reference"]
    assert result["provenance"]["evaluator_data"] == str(tinted_folder)
    assert result["floors"]["fid"] < result["fid"]
    # the Fashion-MNIST evaluator refuses colour; this evaluator refuses another data set
    assert "takes grayscale images, these are colour" in cli_error(
        capsys, ["evaluate", str(run), "--num-samples", "50", "--out", str(tmp_path / "e2")]
    )
    other = tmp_path / "other"
    for c in range(10):  # as many classes, colour too: only the fingerprint differs
        (other / f"k{c}").mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (16, 16), (20 * c + i, 50, 200)).save(other / f"k{c}" / f"{i}.png")
    ev_other = tmp_path / "ev_other"
    fashiongan.train_evaluator(ev_other, data=str(other), epochs=1, log=lambda s: None)
    argv = ["evaluate", str(tmp_path / "g.npz"), "--evaluator", str(ev_other),
            "--data", str(tinted_folder), "--out", str(tmp_path / "e3")]  # fmt: skip
    err = cli_error(capsys, argv)
    assert "was trained on other data" in err and "--force-evaluator" in err
    # the Python API: the same run, scored in the same space
    api = fashiongan.evaluate(
        run, evaluator=str(ev), data=str(tinted_folder), num_samples=100,
        metrics=["fid", "label_accuracy"], write=False, log=lambda s: None,
    )  # fmt: skip
    assert api.results["fid"] == pytest.approx(result["fid"])
    # a colour PNG folder export is scored as the run's images are
    pngs = tmp_path / "pngs"
    assert main(["generate", str(run), "--per-class", "3", "--format", "pngs",
                 "--out", str(pngs)]) == 0  # fmt: skip
    from_folder = fashiongan.evaluate(
        str(pngs), evaluator=str(ev), data=str(tinted_folder), metrics=["label_accuracy"],
        write=False, log=lambda s: None,
    )  # fmt: skip
    assert from_folder.provenance["n_fake"] == 30


def test_augment_gain_runs_each_cell_once_and_tabulates_both_arms(idx_dir, tmp_path, capsys):
    out = tmp_path / "gain"
    argv = ["augment-gain", "--data", str(idx_dir), "--out", str(out), "--per-class", "2,5",
            "--seeds", "0,1", "--kimg", "0.05", "--synthetic-per-class", "4",
            "--classifier-steps", "3", "--width", "0.25", "--z-dim", "8"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "augment-gain.json").read_text())
    cells = result["cells"]
    assert [(c["per_class"], c["seed"]) for c in cells] == [(2, 0), (2, 1), (5, 0), (5, 1)]
    for c in cells:
        assert 0 <= c["real_only"] <= 1 and 0 <= c["real_plus_synthetic"] <= 1
        state = torch.load(out / f"gan-k{c['per_class']}-s{c['seed']}" / "checkpoints" /
                           "final.pt", weights_only=False)  # fmt: skip
        # the GAN saw exactly the classifier's K real images per class, with the cell's seed
        assert state["config"]["data"]["subset"] == 10 * c["per_class"]
        assert state["config"]["train"]["seed"] == c["seed"]
        assert state["config"]["train"]["augment"] == "ada"  # the small-data preset
    table = (out / "augment-gain.md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith("| 2 |") and "±" in table[2]
    capsys.readouterr()
    assert main(argv) == 0  # every cell is in the JSON: nothing is retrained
    assert "stopped by" not in capsys.readouterr().out
    assert json.loads((out / "augment-gain.json").read_text())["cells"] == cells
    more = argv[:]
    more[more.index("--synthetic-per-class") + 1] = "6"  # the same GANs, new classifiers
    assert main(more) == 0
    printed = capsys.readouterr().out
    assert "stopped by" not in printed and printed.count("reusing the GAN") == 4
    again = json.loads((out / "augment-gain.json").read_text())["cells"]
    assert [c["synthetic_per_class"] for c in again] == [6] * 4
    assert [c["real_only"] for c in again] == [c["real_only"] for c in cells]  # seeded
    bad = argv[:]
    bad[bad.index("--per-class") + 1] = "0"
    assert "must be at least 1" in cli_error(capsys, bad)
    assert "--subset: augment-gain sets it for every GAN; use --per-class" in cli_error(
        capsys, argv + ["--subset", "50"]
    )


def test_array_files_bad_input_and_the_keras_layout(tmp_path, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    assert "not an NPZ (zip) or NPY file" in cli_error(capsys, train_argv(junk, tmp_path / "r"))
    x = np.random.default_rng(0).integers(0, 256, (40, 10, 10), dtype=np.uint8)
    named = tmp_path / "named.npz"
    np.savez(named, images=x, labels=np.arange(40) % 3, class_names=np.array(["a", "b"]))
    assert "label 2 is outside 0..1" in cli_error(capsys, train_argv(named, tmp_path / "r"))
    odd = tmp_path / "odd.npz"
    np.savez(odd, images=x[:, :, :, None].repeat(2, axis=3))
    assert "expected images (N,H,W) or (N,H,W,C)" in cli_error(
        capsys, train_argv(odd, tmp_path / "r")
    )
    keras = tmp_path / "keras.npz"
    np.savez(
        keras, x_train=x[:30], y_train=np.arange(30) % 3, x_test=x[30:], y_test=np.arange(10) % 3
    )
    train, test = (load_dataset(str(keras), s, image_size=10) for s in ("train", "test"))
    assert (len(train), len(test)) == (30, 10) and train.checksum == test.checksum
    assert "(x_test)" in test.source


def test_hundreds_of_classes_train_and_the_grid_shows_twenty(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (900, 12, 12), dtype=np.uint8)
    data = tmp_path / "many.npz"
    np.savez(data, images=x, labels=np.repeat(np.arange(300), 3))
    assert main(train_argv(data, tmp_path / "r")) == 0
    grid = Image.open(next((tmp_path / "r" / "samples").glob("grid-*.png")))
    assert grid.height == (20 * (28 + 2) + 2) * 2  # 20 rows of 28 px, 2 px apart, shown ×2
    state = torch.load(tmp_path / "r" / "checkpoints" / "final.pt", weights_only=False)
    assert len(state["class_names"]) == 300


def test_an_evaluator_whose_held_out_part_differs_from_the_runs_is_refused():
    from types import SimpleNamespace

    from fashiongan.metrics.evaluate import check_held_out
    from fashiongan.metrics.sources import ImageSet

    def judged(data):
        return ImageSet(torch.zeros(2, 8, 8, dtype=torch.uint8), None, "run", ("a",), 1, data)

    ev = SimpleNamespace(info={"data_options": {"val_fraction": 0.2, "split_seed": 0}})
    with pytest.raises(FashionGANError, match="--val-fraction 0.1.*train the evaluator with"):
        check_held_out(judged({"data": "d"}), ev)  # the run kept the default 0.1
    check_held_out(judged({"data": "d", "val_fraction": 0.2}), ev)
    with pytest.raises(FashionGANError, match="--split-seed 3"):
        check_held_out(judged({"val_fraction": 0.2, "split_seed": 3}), ev)
    check_held_out(judged(None), ev)  # an image set: nothing to compare


def test_train_and_test_folders_are_the_two_splits_with_one_fingerprint(tmp_path):
    root = tmp_path / "split"
    write_set(root / "train", per_class=5)
    for c, name in enumerate(("a", "b")):
        (root / "test" / name).mkdir(parents=True)
        Image.new("L", (12, 12), 200 + c).save(root / "test" / name / "t.png")
    train, test = (load_dataset(str(root), s, image_size=12) for s in ("train", "test"))
    assert (len(train), len(test)) == (10, 2) and train.class_names == test.class_names
    assert train.checksum == test.checksum  # one data set, both parts
    assert sorted(test.images[:, 0, 0].tolist()) == [200, 201]  # nothing held out of train
