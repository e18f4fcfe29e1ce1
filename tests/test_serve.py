"""`fashiongan serve`: every endpoint and validation error in-process (TestClient), the same
seed giving the same bytes, requests serialized on the models, and an OpenAPI fuzz with
schemathesis that must never see a 5xx."""

import base64
import io
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image

from conftest import write_train_idx
from fashiongan.cli import main
from fashiongan.config import RunConfig
from fashiongan.sampling import load_generator
from fashiongan.serve.app import create_app
from fashiongan.training.loop import train


def tiny_run(root: Path, name: str, cond: str) -> Path:
    data = write_train_idx(root / "idx")
    cfg = RunConfig()
    cfg.data.data, cfg.data.class_names = str(data), "fashion"
    cfg.model.width, cfg.model.z_dim, cfg.model.cond = 0.25, 16, cond
    cfg.train.batch_size, cfg.train.epochs, cfg.train.steps = 16, 0, 30
    cfg.train.ema_kimg = 0.1
    cfg.log.log_every, cfg.log.sample_every, cfg.log.progress, cfg.log.grid_seeds = 5, 10, False, 3
    return train(cfg, root / name).run_dir


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    cond = tiny_run(root, "cond", "projection")
    (cond / "eval").mkdir()
    (cond / "eval" / "metrics.json").write_text(json.dumps({"fid": 12.5, "is": 7.0, "x": [1]}))
    with open(cond / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 30, "kimg": 0.48, "fid": 40.0, "is": 3.0}) + "\n")
    uncond = tiny_run(root, "uncond", "none")
    exported = root / "plain.safetensors"
    assert main(["export", str(uncond), "--out", str(exported)]) == 0
    return {"cond": cond, "plain": exported}


@pytest.fixture(scope="module")
def app(sources):
    return create_app([(p, load_generator(p)) for p in sources.values()], max_n=64)


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def npz(content: bytes) -> dict:
    with np.load(io.BytesIO(content), allow_pickle=False) as z:
        return {k: z[k] for k in z}


def test_health_and_models(client):
    assert client.get("/health").json() == {"status": "ok", "version": "0.1.0", "models": 2}
    cond, plain = client.get("/v1/models").json()
    assert cond["id"] == "cond" and plain["id"] == "plain"
    assert cond["conditioning"] == "projection" and cond["conditional"] and cond["has_run"]
    assert cond["classes"][7] == "sneaker" and cond["step"] == 30 and cond["resolution"] == 28
    assert cond["metrics"] == {"fid": 12.5, "is": 7.0}
    assert plain["conditioning"] == "none" and not plain["has_run"] and plain["metrics"] is None


def test_generate_formats_and_same_seed_same_bytes(client):
    for fmt in ("png", "npz", "json"):
        url = f"/v1/generate?n=12&class=sneaker&class=bag&seed=5&format={fmt}"
        a, b = client.get(url), client.get(url)
        assert a.status_code == 200 and a.content == b.content, fmt
        assert a.headers["x-seed"] == "5" and a.headers["x-model"] == "cond"
        assert client.get(url.replace("seed=5", "seed=6")).content != a.content
    grid = png(client.get("/v1/generate?n=12&ncol=4&seed=5").content)
    assert grid.shape == (2 * (3 * 30 + 2), 2 * (4 * 30 + 2))  # 2-px gaps, then ×2
    data = npz(client.get("/v1/generate?n=12&class=sneaker&class=bag&seed=5&format=npz").content)
    assert data["images"].shape == (12, 28, 28) and data["images"].dtype == np.uint8
    assert data["labels"].tolist() == [7, 8] * 6 and data["class_names"][7] == "sneaker"
    body = client.get("/v1/generate?n=3&class=7&seed=5&format=json").json()
    assert [i["class"] for i in body["images"]] == ["sneaker"] * 3
    first = png(base64.b64decode(body["images"][0]["png"]))
    assert first.shape == (28, 28)
    # the JSON body of POST is the same request as the query of GET
    post = client.post("/v1/generate", json={"n": 12, "class": ["sneaker", "bag"], "seed": 5})
    assert post.content == client.get("/v1/generate?n=12&class=sneaker&class=bag&seed=5").content
    plain = npz(client.get("/v1/generate?model=plain&n=4&format=npz").content)
    assert plain["labels"].tolist() == [-1] * 4


@pytest.mark.parametrize(
    "url, message",
    [
        ("/v1/generate?n=0", "n=0: expected 1..64 (the server's cap; start it with --max-n)"),
        ("/v1/generate?n=65", "n=65: expected 1..64"),
        ("/v1/generate?class=socks", "unknown class 'socks'; choose a name or id: 0=t-shirt"),
        ("/v1/generate?model=nope", "unknown model 'nope'; available: cond, plain"),
        ("/v1/generate?model=plain&class=bag", "is unconditional"),
        ("/v1/interpolate?seeds=1", "give at least two seeds"),
        ("/v1/interpolate?seeds=0&seeds=1&steps=64", "10 walks × 64 steps = 640 frames"),
        ("/v1/interpolate?seeds=-1&seeds=2", "seeds must be in 0..2^63-1"),
        ("/v1/interpolate?model=plain&class=bag&class=coat", "is unconditional"),
    ],
)
def test_bad_requests_are_422_with_the_valid_values(client, url, message):
    r = client.get(url)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


@pytest.mark.parametrize(
    "url", ["/v1/generate?n=x", "/v1/generate?format=bmp", "/v1/generate?seed=-3",
            "/v1/interpolate?steps=1", "/v1/interpolate?mode=cubic"],
)  # fmt: skip
def test_malformed_parameters_are_422(client, url):
    r = client.get(url)
    assert r.status_code == 422 and r.json()["detail"], r.text


def test_interpolate(client):
    strip = client.get("/v1/interpolate?seeds=0&seeds=1&class=dress&steps=6")
    assert strip.status_code == 200 and strip.headers["content-type"] == "image/png"
    assert png(strip.content).shape == (2 * (30 + 2), 2 * (6 * 30 + 2))
    gif = client.get("/v1/interpolate?seeds=0&seeds=1&class=dress&steps=6&format=gif")
    assert gif.content[:6] == b"GIF89a" and Image.open(io.BytesIO(gif.content)).n_frames == 10
    walk = client.get("/v1/interpolate?seeds=3&class=sneaker&class=ankle boot&steps=5&format=json")
    frames = [png(base64.b64decode(f)) for f in walk.json()["walks"][0]]
    assert len(frames) == 5 and not np.array_equal(frames[0], frames[-1])
    again = client.get("/v1/interpolate?seeds=3&class=sneaker&class=ankle boot&steps=5&format=json")
    assert again.content == walk.content


def test_run_metrics_and_grids(client):
    m = client.get("/v1/runs/cond/metrics").json()
    assert [r["step"] for r in m["train"]] == [5, 10, 15, 20, 25, 30]
    assert m["eval"] == [{"step": 30, "kimg": 0.48, "fid": 40.0, "is": 3.0}]
    steps = client.get("/v1/runs/cond/grids").json()["steps"]
    assert steps == [10, 20, 30]
    grid = client.get("/v1/runs/cond/grids/20")
    assert grid.status_code == 200 and png(grid.content).ndim == 2
    assert client.get("/v1/runs/cond/grids/21").status_code == 404
    assert "served from a file" in client.get("/v1/runs/plain/metrics").json()["detail"]
    assert client.get("/v1/runs/nope/grids").status_code == 404
    # nothing reaches a path: a step must be an int, a run an id
    assert client.get("/v1/runs/cond/grids/..%2Fconfig.json").status_code in (404, 422)
    assert client.get("/v1/runs/..%2F..%2Fetc/metrics").status_code == 404
    assert client.get("/static/../config.json").status_code == 404


def test_page_and_schema(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>fashiongan</title>" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert "http" not in client.get("/static/index.html").text.replace("http-equiv", "")
    schema = client.get("/openapi.json").json()
    assert {"/health", "/v1/models", "/v1/generate", "/v1/interpolate"} <= set(schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset  # served locally: works offline


def test_parallel_clients_are_served_one_generation_at_a_time(app, client, monkeypatch):
    gen = app.state.served["cond"].gen
    active, peak, guard = [0], [0], threading.Lock()
    original = gen.images

    def counting(*args, **kwargs):
        with guard:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return original(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(gen, "images", counting)
    url = "/v1/generate?n=64&seed=1&format=npz"
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: client.get(url), range(24)))
    assert all(r.status_code == 200 for r in bodies)
    assert len({r.content for r in bodies}) == 1 and peak[0] == 1


def test_serve_command_line(sources, capsys, monkeypatch):
    import uvicorn

    started = {}
    monkeypatch.setattr(
        uvicorn, "run", lambda app, host, port, **kw: started.update(h=host, p=port)
    )
    assert main(["serve", str(sources["cond"]), "--host", "0.0.0.0", "--port", "9999"]) == 0
    out = capsys.readouterr()
    assert started == {"h": "0.0.0.0", "p": 9999}
    assert "warning: --host 0.0.0.0 makes the server reachable" in out.err
    assert "model cond:" in out.out and "serving on http://0.0.0.0:9999/" in out.out
    for argv, message in (
        (["serve", str(sources["cond"]), "--max-n", "0"], "--max-n 0: expected 1..100000"),
        (["serve", "/no/such/run"], "no such run directory or checkpoint"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_oversized_requests_are_refused_before_parsing(client):
    big = b'{"n": 1, "pad": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    r = client.post("/v1/generate", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]
    r = client.get("/health?x=" + "a" * 10_000)
    assert r.status_code == 414
    assert client.post("/v1/generate", json={"n": 1}).status_code == 200  # small ones still pass


def test_a_real_server_answers_oversized_requests_instead_of_resetting(sources):
    """Through uvicorn and a socket: a 10 MB query string and a 5 MB body get their 414/413
    (uvicorn alone cut request lines at 16 KiB with a connection reset)."""
    import socket
    import time

    import uvicorn

    from fashiongan.serve.app import MAX_DRAIN

    app = create_app([(sources["cond"], load_generator(sources["cond"]))])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            h11_max_incomplete_event_size=MAX_DRAIN)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]

    def status(raw: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(raw)
            return s.recv(64).split(b"\r\n")[0]

    try:
        query = b"GET /health?x=" + b"a" * 10_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert status(query) == b"HTTP/1.1 414 Request-URI Too Long"
        body = b'{"n": 1, "pad": "' + b"a" * 5_000_000 + b'"}'
        head = b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        post = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        assert status(post) == b"HTTP/1.1 413 Request Entity Too Large"
        assert status(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 200 OK"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


fuzz = schemathesis.pytest.from_fixture("api_schema")


@fuzz.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_fuzz_from_the_openapi_schema_never_5xx(case):
    response = case.call()
    assert response.status_code < 500, (case.path, case.query, response.text[:300])
