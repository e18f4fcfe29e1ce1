"""Fetch the four official Fashion-MNIST files, verify them, and write them atomically.

A file is accepted when its .gz MD5 is the official one (Zalando's README, torchvision), or
when its decompressed content has the SHA-256 below: mirrors that recompress the same data
(Debian's dataset-fashion-mnist does) verify too. A cut download is kept as NAME.part and
continued with an HTTP Range request; a server that ignores Range restarts it from zero.
"""

import contextlib
import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from fashiongan.errors import FashionGANError
from fashiongan.progress import progress_bar

OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# name → (md5 of the official .gz, sha256 of the decompressed IDX content)
FILES = {
    "train-images-idx3-ubyte.gz": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte.gz": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
_CHUNK = 1 << 16


def verify(path: Path, name: str) -> bool:
    """True when `path` holds the official content of `name` (see module docstring)."""
    md5, content_sha = FILES[name]
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    if h.hexdigest() == md5:
        return True
    s = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while block := f.read(1 << 20):
                s.update(block)
    except (OSError, EOFError, zlib.error):
        return False
    return s.hexdigest() == content_sha


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (Range from its current size), or restart it."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the .part is already whole (or longer): re-verify it
            return
        raise FashionGANError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FashionGANError(
            f"download of {url} failed: {reason}; check the network or pass --mirror URL"
        ) from None
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"
        total = response.headers.get("Content-Length")
        total = int(total) + (have if resumed else 0) if total else None
        with (
            open(part, mode) as f,
            progress_bar(
                progress,
                total=total,
                initial=have if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                leave=False,
            ) as bar,
        ):
            try:
                while block := response.read(_CHUNK):
                    f.write(block)
                    bar.update(len(block))
            except OSError as e:
                raise FashionGANError(
                    f"download of {url} was cut off ({e}); run the same command again to resume"
                ) from None
            f.flush()
            os.fsync(f.fileno())


def download(
    directory: str | os.PathLike,
    mirror: str = OFFICIAL_URL,
    timeout: float = 60.0,
    progress: bool = True,
    force: bool = False,
) -> list[Path]:
    """Download the four files into `directory` (skipping verified ones). Returns their paths.
    A checksum mismatch deletes the partial file and raises; nothing unverified is left under
    the final name."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FashionGANError(f"--dir {directory}: cannot create it: {e.strerror}") from None
    base = mirror if mirror.endswith("/") else mirror + "/"
    paths = []
    for name in FILES:
        final = directory / name
        paths.append(final)
        if final.exists() and not force and verify(final, name):
            continue
        part = directory / (name + ".part")
        _fetch(base + name, part, timeout, progress)
        if not verify(part, name):
            with contextlib.suppress(OSError):
                part.unlink()
            raise FashionGANError(
                f"{base + name}: checksum mismatch (expected md5 {FILES[name][0]}); the file "
                f"was deleted; try again or use another --mirror"
            )
        os.replace(part, final)
    return paths
