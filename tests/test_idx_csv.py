"""IDX and Kaggle-CSV readers and writers: round trips and every malformed input."""

import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fashiongan.data.csv import read_csv, write_csv
from fashiongan.data.idx import encode_idx, read_idx, write_idx
from fashiongan.errors import FashionGANError


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, name):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, a)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\0\0")
    np.testing.assert_array_equal(read_idx(tmp_path / name), a)


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    a = np.ones((3, 2, 2), np.uint8)
    (tmp_path / "plain-name").write_bytes(gzip.compress(encode_idx(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-name"), a)


def test_idx_header_is_the_documented_layout():
    raw = encode_idx(np.zeros((5, 28, 28), np.uint8))
    assert raw[:4] == bytes([0, 0, 8, 3])
    assert struct.unpack(">3I", raw[4:16]) == (5, 28, 28)
    assert len(raw) == 16 + 5 * 784


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "truncated IDX file: header"),
        (bytes([1, 2, 8, 3]) + b"\0" * 40, "bad IDX magic"),
        (bytes([0, 0, 8, 0]), "bad IDX magic"),
        (bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + b"\0" * 4, "not supported"),
        (bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28) + b"\0" * 100, "truncated IDX file"),
        (bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\0" * 3, "beyond its declared shape"),
        # a header that claims 2**32 × 2**32 × 2**32 bytes must fail without allocating it
        (
            bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\0" * 8,
            "truncated IDX file",
        ),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_idx_bad_input_is_a_one_line_error(tmp_path, payload, message, gz):
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(FashionGANError, match=message) as e:
        read_idx(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_idx_truncated_gzip_stream(tmp_path):
    raw = gzip.compress(
        encode_idx(np.random.default_rng(0).integers(0, 255, (50, 28, 28), np.uint8))
    )
    (tmp_path / "cut.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FashionGANError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz")


def test_idx_directory_and_missing(tmp_path):
    with pytest.raises(FashionGANError, match="is a directory"):
        read_idx(tmp_path)
    with pytest.raises(FashionGANError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_idx_write_rejects_non_uint8(tmp_path):
    with pytest.raises(FashionGANError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros((2, 2), np.float32))
    assert not list(tmp_path.iterdir())  # nothing half-written


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))),
    st.booleans(),
)
def test_idx_round_trip_property(tmp_path, a, gz):
    path = tmp_path / ("p.gz" if gz else "p")
    write_idx(path, a)
    np.testing.assert_array_equal(read_idx(path), a)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=64))
def test_idx_reader_never_crashes_on_garbage(tmp_path, blob):
    path = tmp_path / "garbage"
    path.write_bytes(blob)
    try:
        read_idx(path)
    except FashionGANError:
        pass


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = np.arange(7) % 10
    write_csv(tmp_path / "a.csv", images, labels)
    header = (tmp_path / "a.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["label", "pixel1"] and header[-1] == "pixel784"
    got_images, got_labels = read_csv(tmp_path / "a.csv")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(1, 6), st.integers(1, 5), st.data())
def test_csv_round_trip_property(tmp_path, n, side, data):
    images = data.draw(arrays(np.uint8, (n, side, side)))
    labels = data.draw(arrays(np.int64, (n,), elements=st.integers(0, 2**40)))
    write_csv(tmp_path / "p.csv", images, labels)
    got_images, got_labels = read_csv(tmp_path / "p.csv")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200))
def test_csv_reader_never_crashes_on_bytes(tmp_path, blob):
    path = tmp_path / "b.csv"
    path.write_bytes(b"label,pixel1,pixel2,pixel3,pixel4\n" + blob)
    try:
        read_csv(path)
    except FashionGANError:
        pass


def _csv(tmp_path, header, rows):
    path = tmp_path / "bad.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


HEADER4 = "label,pixel1,pixel2,pixel3,pixel4"


@pytest.mark.parametrize(
    "header, rows, message",
    [
        ("label,p1,p2,p3,p4", ["1,0,0,0,0"], "wrong CSV header"),
        ("label,pixel1,pixel2,pixel3", ["1,0,0,0"], "wrong CSV header"),  # 3 is not square
        ("", ["1,2"], "wrong CSV header"),
        (HEADER4, ["1,0,0,x,0"], "malformed CSV row"),
        (HEADER4, ["1,0,0,0,0", "1,0,0"], "line 3 has 3 cells; the header has 5"),  # ragged
        (HEADER4, ["1,0,0,nan,0"], "must be integers"),
        (HEADER4, ["1,0,0,1.5,0"], "must be integers"),
        (HEADER4, ["1,0,0,256,0"], "line 2: pixel values must be in 0..255"),
        (HEADER4, ["1,0,0,0,0", "2,0,-1,0,0"], "line 3: pixel values"),
        (HEADER4, ["-1,0,0,0,0"], "labels must be non-negative"),
        (HEADER4, [], "no rows"),
    ],
)
def test_csv_bad_input(tmp_path, header, rows, message):
    path = _csv(tmp_path, header, rows)
    with pytest.raises(FashionGANError, match=message) as e:
        read_csv(path)
    assert "\n" not in str(e.value) and "bad.csv" in str(e.value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet="0123456789,-.xn \n", max_size=80))
def test_csv_reader_never_crashes_on_garbage(tmp_path, body):
    path = tmp_path / "g.csv"
    path.write_text(HEADER4 + "\n" + body)
    try:
        images, labels = read_csv(path)
        assert images.dtype == np.uint8 and images.shape[1:] == (2, 2)
    except FashionGANError:
        pass
