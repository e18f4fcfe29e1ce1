"""Atomic file writes: a reader never sees a half-written checkpoint, grid or data set."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from fashiongan.errors import FashionGANError

# mkstemp creates 0600 files; a finished output gets what open() would have given it
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def temp_prefix(name: str) -> str:
    """The prefix of a temporary sibling of `name`, owned by this process: `.NAME.PID.`"""
    return f".{name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: Path, name: str) -> list[Path]:
    """Remove the temporary siblings of `name` left by processes that no longer run (a write
    killed with -9 cannot clean up after itself); those of live processes stay."""
    removed = []
    with contextlib.suppress(OSError):
        for p in directory.glob(f".{glob_escape(name)}.*"):
            pid = p.name[len(name) + 2 :].split(".", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file beside `path` for binary writing; on success fsync and rename it over
    `path`, on any error remove it and leave `path` as it was."""
    path = Path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(directory, path.name)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=directory)
        os.fchmod(fd, FILE_MODE)
    except OSError as e:
        raise FashionGANError(
            f"cannot write {path}: {e.strerror or e}; choose another --out"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise FashionGANError(f"cannot write {path}: {e.strerror or e}") from e
        raise


@contextlib.contextmanager
def atomic_dir(
    out: str | os.PathLike, replace: bool = False, hint: str = "choose a new one"
) -> Iterator[Path]:
    """A temp folder beside `out` to fill; on success it becomes `out` (an empty `out` is
    replaced, a non-empty one only with `replace`), on any error it is removed: `out` appears
    whole or not at all. `out` existing and not empty is refused, with `hint`, before any work."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not replace)):
        raise FashionGANError(f"--out {out} exists and is not an empty directory; {hint}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out.parent, out.name)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), dir=out.parent))
        os.chmod(tmp, DIR_MODE)
    except OSError as e:
        raise FashionGANError(
            f"cannot write {out}: {e.strerror or e}; choose another --out"
        ) from None
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise FashionGANError(f"cannot write {out}: {e.strerror or e}") from None
        raise


def writable_dir(directory: Path, flag: str) -> None:
    """Make sure a file can be written in `directory` (creating it if need be), so a long job
    fails at its start rather than after its work; folders made for the probe are removed
    again, so a job refused later leaves nothing behind."""
    directory = Path(directory)
    made = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise FashionGANError(
            f"{flag} {directory}: cannot write there ({e.strerror or e}); choose another {flag}"
        ) from None
    finally:
        for p in made:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()


class DirectoryLock:
    """An exclusive lock on a directory, held by one process at a time (flock on DIR/.lock, so
    the kernel releases it when the process dies, even by kill -9). The lock file names the
    holder's pid for the message the next process gets."""

    def __init__(self, directory: Path, flag: str = "--out"):
        self.directory, self.flag, self._file = Path(directory), flag, None

    def __enter__(self) -> "DirectoryLock":
        import fcntl

        path = self.directory / ".lock"
        if self.directory.exists() and not self.directory.is_dir():
            raise FashionGANError(f"{self.flag} {self.directory} is a file; expected a directory")
        self._made = [p for p in (self.directory, path) if not p.exists()]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            f = open(path, "a+")
        except OSError as e:
            raise FashionGANError(
                f"{self.flag} {self.directory}: cannot write there ({e.strerror or e}); choose "
                f"another {self.flag}"
            ) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            self._made = []  # the holder's, not ours to remove
            raise FashionGANError(
                f"{self.flag} {self.directory} is in use by another fashiongan process (pid "
                f"{holder}); wait for it to end or choose another {self.flag}"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._file is None:
            return
        if exc_type is not None:  # a refused start leaves no folder (nor lock) it made behind
            directory, lock = self.directory, self.directory / ".lock"
            if directory in self._made and {p.name for p in directory.iterdir()} == {".lock"}:
                shutil.rmtree(directory, ignore_errors=True)
            elif lock in self._made:
                lock.unlink(missing_ok=True)
        self._file.close()  # closing releases the flock
        self._file = None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_save(path: str | os.PathLike, save: Callable[[BinaryIO], None]) -> None:
    """`save(fileobj)` writes the content (torch.save, np.savez, PIL .save ...)."""
    with atomic_open(path) as f:
        save(f)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl; a torn last line (from a kill) is ignored."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
