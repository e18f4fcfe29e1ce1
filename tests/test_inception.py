"""`evaluate --features inception`: the weights' download and verification (a local HTTP
server on 127.0.0.1), and the feature path against torch-fidelity's own code on one weights file
(in the torch-fidelity venv: torch-fidelity needs torchvision, which does not import beside
torch's CPU build)."""

import hashlib
import http.server
import json
import subprocess
import threading

import numpy as np
import pytest

from conftest import synthetic_images
from fashiongan.cli import main
from fashiongan.data.datasets import FASHION_CLASSES
from fashiongan.data.idx import write_idx
from fashiongan.dataset_export import export
from fashiongan.errors import FashionGANError
from fashiongan.metrics import inception
from test_ecosystem import REPO, fidelity_python


@pytest.fixture
def www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(root))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_weights_are_downloaded_verified_and_cached(www, tmp_path, monkeypatch):
    root, url = www
    payload = b"inception weights stand-in " * 1000
    (root / "w.pth").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(inception, "HASH_PREFIX", digest[:8])
    cache = tmp_path / "cache"
    path, got = inception.weights_file(None, cache, url=url + "w.pth", progress=False)
    assert got == digest and path.read_bytes() == payload
    assert path == cache / "inception" / inception.WEIGHTS_NAME
    (root / "w.pth").unlink()  # cached now: no second download
    assert inception.weights_file(None, cache, url=url + "w.pth", progress=False)[0] == path
    # a damaged download is refused and nothing unverified is kept
    path.unlink()
    (root / "w.pth").write_bytes(payload[:-1] + b"!")
    with pytest.raises(FashionGANError, match="does not begin with.*--inception-weights FILE"):
        inception.weights_file(None, cache, url=url + "w.pth", progress=False)
    assert list((cache / "inception").iterdir()) == []
    with pytest.raises(FashionGANError, match="HTTP 404"):
        inception.weights_file(None, cache, url=url + "missing.pth", progress=False)
    # a local file: the same check
    (tmp_path / "good.pth").write_bytes(payload)
    assert inception.weights_file(tmp_path / "good.pth", cache)[1] == digest
    with pytest.raises(FashionGANError, match="not the standard Inception weights"):
        inception.weights_file(root / "w.pth", cache)
    with pytest.raises(FashionGANError, match="no such file"):
        inception.weights_file(tmp_path / "none.pth", cache)


def test_inception_flags_fail_in_one_line_before_any_work(tmp_path, capsys):
    images, labels = synthetic_images(2)
    np.savez(tmp_path / "a.npz", images=images, labels=labels)
    assert main(["evaluate", str(tmp_path / "a.npz"), "--inception-weights", "w.pth"]) == 2
    assert "--features inception" in capsys.readouterr().err
    # this venv has no torch-fidelity (torchvision cannot import beside torch's CPU build)
    assert main(["evaluate", str(tmp_path / "a.npz"), "--features", "inception"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'fashiongan[inception]'" in err
    assert not (tmp_path / "a-eval").exists()


def test_inception_features_equal_torch_fidelity_on_the_same_weights(tmp_path):
    a, la = synthetic_images(2, seed=0)
    b, lb = synthetic_images(2, seed=1)
    b = np.clip(b.astype(int) + 40, 0, 255).astype(np.uint8)  # a different set: FID > 0
    export(tmp_path / "A", a, la, "pngs", FASHION_CLASSES, layout="flat")
    export(tmp_path / "B", b, lb, "pngs", FASHION_CLASSES, layout="flat")
    data = tmp_path / "idx"
    for prefix, n, seed in (("train", 4, 2), ("t10k", 3, 3)):
        images, labels = synthetic_images(n, seed=seed)
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    run = subprocess.run(
        [fidelity_python(), str(REPO / "tests" / "fidelity" / "inception_check.py"),
         str(tmp_path / "A"), str(tmp_path / "B"), str(data), str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    ours, theirs = out["ours"], out["theirs"]
    assert ours["inception_fid"] > 0.01
    assert ours["inception_fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert out["kid_one_subset"] == pytest.approx(
        theirs["kernel_inception_distance_mean"], abs=1e-5
    )
    assert out["is_one_split"] == pytest.approx(theirs["inception_score_mean"], rel=1e-4)
    assert len(out["provenance"]["weights_sha256"]) == 64
    assert "TF1 bilinear" in out["provenance"]["input"]
    # against a real split: values and floors in Inception space, the reals cached once
    assert {"inception_fid", "inception_kid", "inception_is"} <= out["real"].keys()
    assert {"inception_fid", "inception_precision"} <= out["real_floors"].keys()
    assert out["again"] == out["real"]
    assert len(out["cached"]) == 2  # the real split's features and the floor set's
    assert "needs the real images" in out["offline"] and "fashiongan download" in out["offline"]
    # training with --eval-every and --eval-features inception logs inception_fid
    assert out["train_status"] == 0
    assert [r["step"] for r in out["train_rows"]] == [2]
    assert out["train_rows"][0]["inception_fid"] > 0 and out["train_rows"][0]["fid"] > 0
