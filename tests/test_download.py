"""`fashiongan download` against a local HTTP server on 127.0.0.1 serving the Debian files."""

import http.server
import shutil
import threading

import pytest

from fashiongan.cli import main
from fashiongan.data.download import FILES, download, verify
from fashiongan.errors import FashionGANError


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; honours `Range: bytes=N-` with 206 when `ranges` is on."""

    ranges = True
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Range")))
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.ranges and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path, real_data):
    root = tmp_path / "www"
    root.mkdir()
    for name in FILES:
        shutil.copy(real_data / name, root / name)
    handler = type("H", (RangeHandler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, handler
    httpd.shutdown()


def test_download_verifies_and_is_found_by_train(server, tmp_path):
    url, _, handler = server
    dest = tmp_path / "dl"
    assert main(["download", "--dir", str(dest), "--mirror", url, "--no-progress"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)
    assert all(verify(dest / n, n) for n in FILES)
    n_requests = len(handler.requests)
    download(dest, url, progress=False)  # verified files are not fetched again
    assert len(handler.requests) == n_requests


def test_checksum_mismatch_leaves_nothing(server, tmp_path, capsys):
    url, root, _ = server
    blob = bytearray((root / "train-labels-idx1-ubyte.gz").read_bytes())
    blob[100] ^= 0xFF
    (root / "train-labels-idx1-ubyte.gz").write_bytes(bytes(blob))
    dest = tmp_path / "dl"
    assert main(["download", "--dir", str(dest), "--mirror", url, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and err.count("\n") == 1
    assert not (dest / "train-labels-idx1-ubyte.gz").exists()
    assert not list(dest.glob("*.part"))


def test_resume_with_range(server, tmp_path):
    url, root, handler = server
    dest = tmp_path / "dl"
    dest.mkdir()
    full = (root / "t10k-images-idx3-ubyte.gz").read_bytes()
    (dest / "t10k-images-idx3-ubyte.gz.part").write_bytes(full[: len(full) // 3])
    download(dest, url, progress=False)
    assert (dest / "t10k-images-idx3-ubyte.gz").read_bytes() == full
    assert ("/t10k-images-idx3-ubyte.gz", f"bytes={len(full) // 3}-") in handler.requests


def test_restart_when_server_ignores_range(server, tmp_path):
    url, root, handler = server
    handler.ranges = False
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "t10k-labels-idx1-ubyte.gz.part").write_bytes(b"stale bytes from another file")
    download(dest, url, progress=False)
    assert verify(dest / "t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def test_unreachable_mirror_is_one_line(tmp_path):
    with pytest.raises(FashionGANError, match="download of http://127.0.0.1:9/"):
        download(tmp_path, "http://127.0.0.1:9/", timeout=2, progress=False)
