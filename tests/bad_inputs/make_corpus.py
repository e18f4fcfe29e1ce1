"""Write the corpus of broken and hostile inputs beside this file (committed; rerun after
adding a case): python tests/bad_inputs/make_corpus.py

Each entry is a file or folder that some command must refuse with a one-line error;
tests/test_bad_inputs.py lists which command reads it and what the error must say."""

import gzip
import io
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).parent
rng = np.random.default_rng(0)


def idx_bytes(array: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(np.uint8).tobytes()


def images(n: int = 10, side: int = 28) -> np.ndarray:
    return rng.integers(0, 256, (n, side, side), dtype=np.uint8)


def labels(n: int = 10) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


def idx_dir(name: str, image_bytes: bytes, label_bytes: bytes, gz: bool = True) -> None:
    """A train pair: image_bytes written as given, label_bytes gzipped when gz."""
    d = HERE / name
    d.mkdir()
    suffix = ".gz" if gz else ""
    (d / f"train-images-idx3-ubyte{suffix}").write_bytes(image_bytes)
    (d / f"train-labels-idx1-ubyte{suffix}").write_bytes(
        gzip.compress(label_bytes, mtime=0) if gz else label_bytes
    )


def csv_file(name: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    (HERE / name).write_bytes(data)


def csv_text(rows: list[list], n_pixels: int = 784, header: str | None = None) -> str:
    head = header or ",".join(["label"] + [f"pixel{i}" for i in range(1, n_pixels + 1)])
    return head + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def png(path: Path, img: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    for old in HERE.iterdir():
        if old.name not in ("make_corpus.py", "__pycache__"):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    good_images, good_labels = idx_bytes(images()), idx_bytes(labels())
    gz = lambda b: gzip.compress(b, mtime=0)  # noqa: E731

    # IDX: directories holding a train pair, read by `train --data` and `evaluate`
    idx_dir("idx-truncated-gz", gz(good_images)[:-300], good_labels)
    idx_dir("idx-wrong-magic", gz(b"PK\x03\x04" + good_images[4:]), good_labels)
    idx_dir("idx-int32-type", gz(bytes([0, 0, 0x0C, 3]) + good_images[4:]), good_labels)
    idx_dir("idx-count-mismatch", gz(good_images), idx_bytes(labels(9)))
    idx_dir("idx-not-square", gz(idx_bytes(images(10)[:, :, :20])), good_labels)
    absurd = bytes([0, 0, 8, 3]) + struct.pack(">3I", 100_000, 100_000, 100_000) + b"\0" * 100
    idx_dir("idx-absurd-dims-gz", gz(absurd), good_labels)
    idx_dir("idx-absurd-dims", absurd, good_labels, gz=False)
    idx_dir("idx-empty-file", b"", good_labels, gz=False)
    bad_labels = labels()
    bad_labels[3] = 200
    idx_dir("idx-label-out-of-range", gz(good_images), idx_bytes(bad_labels))
    idx_dir("idx-trailing-data", gz(good_images + b"extra"), good_labels)

    # CSV (Kaggle layout), read by `train --data` and `evaluate`
    row = lambda label, v=0: [label] + [v] * 784  # noqa: E731
    csv_file("csv-wrong-header.csv", csv_text([row(0)], header="class,p1,p2"))
    csv_file("csv-ragged-rows.csv", csv_text([row(0), row(1)[:400]]))
    csv_file("csv-nan.csv", csv_text([row(0), [1] + ["nan"] * 784]))
    csv_file("csv-pixel-out-of-range.csv", csv_text([row(0), row(1, 300)]))
    csv_file("csv-float-pixels.csv", csv_text([row(0), row(1, 0.5)]))
    csv_file("csv-negative-label.csv", csv_text([row(0), row(-1)]))
    csv_file("csv-label-out-of-range.csv", csv_text([row(0), row(12)]))
    csv_file("csv-empty.csv", "")
    csv_file("csv-header-only.csv", csv_text([]))
    csv_file("csv-binary.csv", bytes(rng.integers(128, 256, 4096, dtype=np.uint8)))
    (HERE / "csv-is-a-directory.csv").mkdir()
    (HERE / "csv-is-a-directory.csv" / "README").write_text("a directory named like a file\n")

    # PNG folders, read by `evaluate`
    gray = lambda side=28: Image.fromarray(images(1, side)[0])  # noqa: E731
    png(HERE / "pngs-mixed-sizes" / "0_tshirt" / "a.png", gray(28))
    png(HERE / "pngs-mixed-sizes" / "0_tshirt" / "b.png", gray(32))
    png(HERE / "pngs-colour" / "3_dress" / "a.png", gray().convert("RGB"))
    colour = np.stack([images(1)[0]] * 3, -1)
    colour[..., 0] = 255
    png(HERE / "pngs-colour" / "3_dress" / "b.png", Image.fromarray(colour))
    png(
        HERE / "pngs-16-bit" / "7_sneaker" / "a.png",
        Image.fromarray(images(1)[0].astype(np.uint16) * 257),
    )
    rgba = np.dstack([np.stack([images(1)[0]] * 3, -1), np.full((28, 28), 128, np.uint8)])
    png(HERE / "pngs-transparent" / "8_bag" / "a.png", Image.fromarray(rgba, "RGBA"))
    (HERE / "pngs-not-an-image" / "1_trouser").mkdir(parents=True)
    (HERE / "pngs-not-an-image" / "1_trouser" / "a.png").write_text("not a PNG at all\n")
    png(HERE / "pngs-huge" / "9_ankle_boot" / "a.png", Image.new("L", (3000, 3000)))
    png(HERE / "pngs-unknown-class" / "socks" / "a.png", gray())
    (HERE / "pngs-no-images").mkdir()
    (HERE / "pngs-no-images" / "notes.txt").write_text("no PNG here\n")

    # NPZ, read by `evaluate`
    (HERE / "npz-garbage.npz").write_bytes(b"PK\x03\x04" + bytes(200))
    buf = io.BytesIO()
    np.savez(buf, pictures=images())
    (HERE / "npz-no-images-key.npz").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, images=images().astype(np.float32) / 255)
    (HERE / "npz-float-images.npz").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, images=np.array([{"a": 1}], dtype=object))
    (HERE / "npz-pickled-objects.npz").write_bytes(buf.getvalue())
    (HERE / "npz-empty.npz").write_bytes(b"")

    # checkpoints and exported generators, read by `generate`
    buf = io.BytesIO()
    torch.save({"version": "0.1.0", "config": {}, "step": 0, "G": {"w": torch.zeros(64)}}, buf)
    (HERE / "ckpt-truncated.pt").write_bytes(buf.getvalue()[:200])
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)
    (HERE / "ckpt-not-a-dict.pt").write_bytes(buf.getvalue())
    (HERE / "ckpt-empty.pt").write_bytes(b"")
    buf = io.BytesIO()
    torch.save({"version": "9.9", "config": {}, "step": 1, "G": {}}, buf)
    (HERE / "ckpt-from-another-version.pt").write_bytes(buf.getvalue())
    (HERE / "generator-junk.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    print(f"wrote {sum(1 for _ in HERE.iterdir()) - 1} entries to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
