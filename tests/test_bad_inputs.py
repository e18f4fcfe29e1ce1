"""Hostile and broken inputs: every entry of tests/bad_inputs/ is refused by the command that
reads it with a one-line error and exit status 2, and nothing is written; huge claimed sizes
allocate no more than the file justifies; a full disk or an unwritable place is one line too,
and never costs the last good checkpoint."""

import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from fashiongan.checkpoint import load_checkpoint
from fashiongan.cli import main
from fashiongan.data.idx import read_idx
from fashiongan.errors import FashionGANError

CORPUS = Path(__file__).parent / "bad_inputs"

# entry → (the commands that read it, a fragment the one-line error must contain)
TRAIN_AND_EVALUATE = {
    "idx-truncated-gz": "Compressed file ended before the end-of-stream marker",
    "idx-wrong-magic": "bad IDX magic 504b0304",
    "idx-int32-type": "IDX data type 0x0c is not supported",
    "idx-count-mismatch": "10 images but",
    "idx-not-square": "found shape (10, 28, 20)",
    "idx-absurd-dims": "needs 1000000000000000 bytes, found 100",
    "idx-absurd-dims-gz": "needs 1000000000000000 bytes, found 100",
    "idx-empty-file": "truncated IDX file: header is 0 bytes",
    "idx-trailing-data": "data beyond its declared shape",
    "csv-wrong-header.csv": "wrong CSV header 'class,p1,p2'",
    "csv-ragged-rows.csv": "line 3 has 400 cells; the header has 785",
    "csv-nan.csv": "line 3: cells must be integers",
    "csv-float-pixels.csv": "line 3: cells must be integers",
    "csv-pixel-out-of-range.csv": "line 3: pixel values must be in 0..255",
    "csv-negative-label.csv": "line 3: labels must be non-negative",
    "csv-empty.csv": "empty file",
    "csv-header-only.csv": "header but no rows",
    "csv-binary.csv": "cannot read CSV file",
}
TRAIN_ONLY = {
    "idx-label-out-of-range": "label 200 is outside 0..9",
    "csv-label-out-of-range.csv": "label 12 is outside 0..9",
    "csv-is-a-directory.csv": "no train split there",
}
EVALUATE_ONLY = {
    "idx-label-out-of-range": "labels must be class ids 0..9",
    "csv-label-out-of-range.csv": "labels must be class ids 0..9",
    "csv-is-a-directory.csv": "no .png files found",
    "pngs-mixed-sizes": "a.png is 28×28, 0_tshirt/b.png is 32×32",
    "pngs-colour": "the evaluator takes grayscale images, these are colour",
    "pngs-16-bit": "image mode I;16",
    "pngs-transparent": "transparent pixels",
    "pngs-not-an-image": "not a readable image",
    "pngs-huge": "3000×3000 pixels",
    "pngs-unknown-class": "sub-folder name is not a class",
    "pngs-no-images": "no .png files found",
    "npz-garbage.npz": "not a readable .npz",
    "npz-empty.npz": "not a readable .npz",
    "npz-no-images-key.npz": "no 'images' array (found: pictures)",
    "npz-float-images.npz": "expected uint8 pixels",
    "npz-pickled-objects.npz": "Object arrays cannot be loaded",
}
GENERATE = {
    "ckpt-truncated.pt": "not a readable checkpoint",
    "ckpt-empty.pt": "not a readable checkpoint",
    "ckpt-not-a-dict.pt": "not a fashiongan checkpoint",
    "ckpt-from-another-version.pt": "made by fashiongan 9.9; this is",
    "generator-junk.safetensors": "not a readable safetensors file",
}


def argv_for(command: str, entry: str, out: Path) -> list[str]:
    """An IDX entry is a folder holding a train pair: `train --data` takes the folder,
    `evaluate` its images file."""
    path = CORPUS / entry
    if command == "train":
        return ["train", "--data", str(path), "--steps", "1", "--out", str(out)]
    if command == "evaluate":
        if entry.startswith("idx-"):
            path = next(path.glob("train-images-*"))
        return ["evaluate", str(path), "--metrics", "fid", "--out", str(out)]
    return ["generate", str(path), "--out", str(out / "grid.png")]


CASES = (
    [("train", e, m) for e, m in {**TRAIN_AND_EVALUATE, **TRAIN_ONLY}.items()]
    + [("evaluate", e, m) for e, m in {**TRAIN_AND_EVALUATE, **EVALUATE_ONLY}.items()]
    + [("generate", e, m) for e, m in GENERATE.items()]
)


def test_every_corpus_entry_has_a_case():
    entries = {p.name for p in CORPUS.iterdir() if p.name not in ("make_corpus.py", "__pycache__")}
    assert entries == {entry for _, entry, _ in CASES}


@pytest.mark.parametrize("command, entry, message", CASES)
def test_bad_input_is_refused_in_one_line(command, entry, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(argv_for(command, entry, out)) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"fashiongan {command}: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists(), "a refused input must leave nothing behind"


@pytest.mark.parametrize("entry", ["idx-absurd-dims", "idx-absurd-dims-gz"])
def test_claimed_terabytes_allocate_only_what_the_file_holds(entry):
    path = next((CORPUS / entry).glob("train-images-*"))
    tracemalloc.start()
    try:
        with pytest.raises(FashionGANError, match="needs 1000000000000000 bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.1f} MiB for a {path.stat().st_size}-byte file"


def run_with_file_size_limit(argv: list[str], limit: int) -> subprocess.CompletedProcess:
    """The CLI in a child whose files may not grow past `limit` bytes: a full disk, as the
    writing process sees it (EFBIG instead of ENOSPC; CPython ignores SIGXFSZ)."""

    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "fashiongan", *argv],
        capture_output=True,
        text=True,
        preexec_fn=limit_files,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


TINY = ["--width", "0.25", "--z-dim", "16", "--batch-size", "16", "--epochs", "0"]
TINY += ["--log-every", "1", "--ema-kimg", "0.1", "--grid-seeds", "3", "--no-progress"]


def test_full_disk_is_one_line_and_keeps_the_last_good_checkpoint(idx_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(idx_dir), *TINY, "--steps", "4", "--out", str(run)]) == 0
    latest = run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    # room for the log and grids, not for a checkpoint
    r = run_with_file_size_limit(
        ["train", "--resume", str(run), "--steps", "8"], limit=len(before) // 2
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "File too large" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert latest.read_bytes() == before and load_checkpoint(latest)["step"] == 4
    assert not list((run / "checkpoints").glob(".*.tmp"))
    # and generating a data set that does not fit leaves no partial file
    out = tmp_path / "big.npz"
    r = run_with_file_size_limit(
        ["generate", str(run), "--num-samples", "2000", "--out", str(out)], limit=100_000
    )
    assert r.returncode == 2 and "File too large" in r.stderr and r.stderr.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".big.npz*"))
