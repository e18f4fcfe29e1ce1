"""Read and write IDX files (the MNIST / Fashion-MNIST format), gzipped or not.

Layout: 2 zero bytes, a type byte (0x08 = uint8), a byte giving the number of dimensions, then
one big-endian int32 per dimension, then the data in C order. Only uint8 is read and written.
"""

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_open

UINT8 = 0x08
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 4
_CHUNK = 1 << 22


def _open(path: Path):
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == GZIP_MAGIC else open(path, "rb")


def _read_exact(f, n: int, path: Path, what: str) -> bytes:
    """Read n bytes in chunks so a header that claims terabytes fails at the end of the real
    data instead of allocating first."""
    parts, got = [], 0
    while got < n:
        block = f.read(min(_CHUNK, n - got))
        if not block:
            raise FashionGANError(
                f"{path}: truncated IDX file: {what} needs {n} bytes, found {got}"
            )
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (.gz detected by content). Returns a uint8 array of the stored shape."""
    path = Path(path)
    if path.is_dir():
        raise FashionGANError(f"{path}: is a directory, expected an IDX file")
    if not path.exists():
        raise FashionGANError(f"{path}: no such file")
    try:
        with _open(path) as f:
            header = f.read(4)
            if len(header) < 4:
                raise FashionGANError(f"{path}: truncated IDX file: header is {len(header)} bytes")
            zero1, zero2, dtype, ndim = header
            if zero1 != 0 or zero2 != 0 or ndim == 0 or ndim > MAX_DIMS:
                raise FashionGANError(
                    f"{path}: bad IDX magic {header.hex()}: expected 0000 08 01..0{MAX_DIMS}"
                )
            if dtype != UINT8:
                raise FashionGANError(
                    f"{path}: IDX data type 0x{dtype:02x} is not supported; expected 0x08 (uint8)"
                )
            dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, "the shape"))
            n = int(np.prod(dims, dtype=np.int64))
            data = _read_exact(f, n, path, f"shape {'x'.join(map(str, dims))}")
            if f.read(1):
                raise FashionGANError(f"{path}: IDX file has data beyond its declared shape {dims}")
    except (OSError, EOFError, zlib.error) as e:
        raise FashionGANError(f"{path}: cannot read IDX file: {e}") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array with 1..4 dimensions."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= MAX_DIMS:
        raise FashionGANError(
            f"IDX holds uint8 arrays of 1..{MAX_DIMS} dims; got {array.dtype} {array.shape}"
        )
    header = bytes([0, 0, UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write atomically; gzip when the name ends in .gz (mtime 0, so the bytes are reproducible)."""
    path = Path(path)
    raw = encode_idx(array)
    with atomic_open(path) as f:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                gz.write(raw)
        else:
            f.write(raw)
