"""The HTTP API and web page of `fashiongan serve`: FastAPI over one or more LoadedGenerators.

Every generation runs in a worker thread, one at a time across all models (a lock), so
parallel clients queue instead of oversubscribing the CPU, and the event loop stays free.
No endpoint takes a path: models are the ones named on the command line, run files are looked
up by id and step number only.
"""

import base64
import io
import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fashiongan._version import __version__
from fashiongan.data.datasets import parse_class
from fashiongan.errors import FashionGANError
from fashiongan.fileio import read_metrics
from fashiongan.imaging import display_scale, encode_interpolation, make_grid, png_bytes
from fashiongan.model_card import is_model_dir
from fashiongan.sampling import LoadedGenerator, interpolation_frames, latents

STATIC = Path(__file__).parent / "static"
GRID_RE = re.compile(r"grid-(\d+)\.png")
SUMMARY_METRICS = ("fid", "kid", "is", "precision", "recall", "label_accuracy")
MAX_FRAMES = 512  # interpolation: walks × steps


@dataclass
class Served:
    id: str
    source: Path
    gen: LoadedGenerator
    run_dir: Path | None  # the run directory, when the model was given as one

    def metrics(self) -> dict | None:
        """The summary of `fashiongan evaluate` (RUN/eval/metrics.json, or a model directory's
        metrics.json), if it was run."""
        path = self.run_dir / "eval" / "metrics.json" if self.run_dir else None
        if path is None and self.source.is_dir():
            path = self.source / "metrics.json"
        if path is None or not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return {k: d[k] for k in SUMMARY_METRICS if isinstance(d.get(k), int | float)}

    def describe(self) -> dict:
        cfg = self.gen.config.get("model", {})
        return {
            "id": self.id,
            "model": cfg.get("model"),
            "conditioning": cfg.get("cond"),
            "conditional": self.gen.conditional,
            "classes": list(self.gen.class_names),
            "resolution": self.gen.resolution,
            "channels": self.gen.G.channels,
            "step": self.gen.step,
            "has_run": self.run_dir is not None,
            "metrics": self.metrics(),
        }


def model_ids(sources: list[Path]) -> list[str]:
    """A readable, unique id per source: the run directory's or file's name."""
    ids: list[str] = []
    for src in sources:
        base = src.name.removesuffix(".pt").removesuffix(".safetensors") or "model"
        name, k = base, 2
        while name in ids:
            name, k = f"{base}-{k}", k + 1
        ids.append(name)
    return ids


class GenerateRequest(BaseModel):
    model: str | None = Field(None, description="model id (default: the first)")
    n: int = Field(10, description="number of images")
    classes: list[str] | None = Field(
        None, alias="class", description="class names or ids; images cycle over them"
    )
    seed: int = Field(0, ge=0, lt=2**63, description="latent seed: the same seed, the same bytes")
    format: Literal["png", "npz", "json"] = "png"
    ncol: int | None = Field(None, ge=1, le=64, description="grid columns (png)")

    model_config = {"populate_by_name": True}


def _npz(images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> bytes:
    """The layout of `generate --format npz`. numpy writes its zip members with a fixed
    timestamp, so equal requests give equal bytes. Colour images are stored channels last."""
    if images.ndim == 4:
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels, class_names=np.array(class_names))
    return buf.getvalue()


MAX_BODY = 64 * 1024  # bytes of a request body; the largest valid one is a few hundred
MAX_QUERY = 8 * 1024  # bytes of a query string
# An oversized request is read to its end before the refusal (up to this much; a longer one
# is cut): a server that answers and closes with unread bytes makes the client's kernel see a
# connection reset instead of the 413/414. `fashiongan serve` gives uvicorn the same limit
# for a request's line and headers, which it otherwise cuts at 16 KiB with a reset.
MAX_DRAIN = 16 * 1024 * 1024


class LimitRequestSize:
    """ASGI middleware: a body over MAX_BODY gets 413 and a query string over MAX_QUERY 414,
    before any of it is parsed (a 5 MB JSON body used to hold the server for seconds)."""

    def __init__(self, app, max_body: int = MAX_BODY, max_query: int = MAX_QUERY):
        self.app, self.max_body, self.max_query = app, max_body, max_query

    @staticmethod
    async def _refuse(send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if len(scope.get("query_string", b"")) > self.max_query:
            return await self._refuse(send, 414, f"query string over {self.max_query} bytes")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            if length.isdigit() and int(length) <= MAX_DRAIN:
                while (await receive()).get("more_body", False):
                    pass
            return await self._refuse(send, 413, f"request body over {self.max_body} bytes")
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, 413, f"request body over {self.max_body} bytes")


class _TooLarge(Exception):
    pass


class Service:
    """The served generators and what every route needs of them: lookups that answer a bad
    request with a 422 or 404, and generation one request at a time in a worker thread."""

    def __init__(self, generators: list[tuple[Path, LoadedGenerator]], max_n: int):
        if not generators:
            raise FashionGANError("serve needs at least one run directory or checkpoint")
        self.served = {
            mid: Served(mid, src, gen, src if src.is_dir() and not is_model_dir(src) else None)
            for mid, (src, gen) in zip(model_ids([s for s, _ in generators]), generators)
        }
        self.max_n = max_n
        self.lock = threading.Lock()  # one generation at a time: torch already uses every core

    def model(self, mid: str | None) -> Served:
        if mid is None:
            return next(iter(self.served.values()))
        if mid not in self.served:
            raise HTTPException(422, f"unknown model {mid!r}; available: {', '.join(self.served)}")
        return self.served[mid]

    def class_ids(self, m: Served, classes: list[str] | None) -> list[int] | None:
        if not classes:
            return None
        if not m.gen.conditional:
            raise HTTPException(
                422, f"model {m.id!r} is unconditional (trained with --cond none): drop 'class'"
            )
        try:
            return [parse_class(c, m.gen.class_names) for c in classes]
        except FashionGANError as e:
            raise HTTPException(422, str(e)) from None

    def check_n(self, n: int) -> None:
        if not 1 <= n <= self.max_n:
            raise HTTPException(
                422, f"n={n}: expected 1..{self.max_n} (the server's cap; start it with --max-n)"
            )

    @staticmethod
    def check_seeds(seeds: list[int]) -> None:
        if any(not 0 <= s < 2**63 for s in seeds):
            raise HTTPException(422, f"seeds must be in 0..2^63-1, got {seeds[:10]}")

    @staticmethod
    def check_walks(m: Served, seeds: list[int], ids, steps: int) -> None:
        between_classes = ids is not None and len(ids) >= 2
        if not between_classes and len(seeds) < 2:
            raise HTTPException(422, "give at least two seeds, or two classes to walk between")
        walks = (
            len(seeds) * (len(ids) - 1)
            if between_classes
            else (len(seeds) - 1) * (1 if ids or not m.gen.conditional else m.gen.n_classes)
        )
        if walks * steps > MAX_FRAMES:
            raise HTTPException(
                422, f"{walks} walks × {steps} steps = {walks * steps} frames; at most {MAX_FRAMES}"
            )

    async def run_locked(self, fn, *args):
        """fn(*args) in a worker thread, one at a time; a FashionGANError is the client's."""

        def locked():
            with self.lock, torch.inference_mode():
                return fn(*args)

        try:
            return await run_in_threadpool(locked)
        except FashionGANError as e:
            raise HTTPException(422, str(e)) from None

    async def generate(self, req: GenerateRequest) -> Response:
        m = self.model(req.model)
        self.check_n(req.n)
        ids = self.class_ids(m, req.classes)
        body, media_type = await self.run_locked(encode_images, m, req, ids)
        headers = {"X-Seed": str(req.seed), "X-Model": m.id}
        if req.format == "npz":
            headers["Content-Disposition"] = f'attachment; filename="{m.id}-seed{req.seed}.npz"'
        return Response(body, media_type=media_type, headers=headers)

    def run_of(self, mid: str) -> Served:
        if mid not in self.served:
            raise HTTPException(404, f"unknown run {mid!r}; available: {', '.join(self.served)}")
        m = self.served[mid]
        if m.run_dir is None:
            raise HTTPException(
                404, f"{mid!r} was served from a file, not a run directory: it has no run data"
            )
        return m


def encode_images(m: Served, req: GenerateRequest, ids: list[int] | None) -> tuple[bytes, str]:
    """Sample and encode (in the worker thread: PNG encoding is CPU work too)."""
    g = m.gen
    y = g.labels(ids, n=req.n)  # cycles over the classes asked for (all when none)
    images = g.images(latents(req.seed, req.n, g.z_dim), y).numpy()
    labels = y.numpy() if y is not None else np.full(req.n, -1, np.int64)
    if req.format == "npz":
        return _npz(images, labels, g.class_names), "application/octet-stream"
    if req.format == "json":
        items = [
            {
                "label": int(lab) if lab >= 0 else None,
                "class": g.class_names[lab] if lab >= 0 else None,
                "png": base64.b64encode(png_bytes(img)).decode(),
            }
            for img, lab in zip(images, labels)
        ]
        body = {"model": m.id, "seed": req.seed, "images": items}
        return json.dumps(body).encode(), "application/json"
    grid = make_grid(images, req.ncol or min(req.n, 10))
    return png_bytes(grid, display_scale(g.resolution)), "image/png"


def grid_files(m: Served) -> dict[int, Path]:
    found = {}
    for p in (m.run_dir / "samples").glob("grid-*.png"):
        if match := GRID_RE.fullmatch(p.name):
            found[int(match.group(1))] = p
    return dict(sorted(found.items()))


def create_app(
    generators: list[tuple[Path, LoadedGenerator]],
    max_n: int = 1024,
) -> FastAPI:
    """The app over (source path, generator) pairs; `max_n` caps images per request."""
    svc = Service(generators, max_n)
    # /docs and /redoc with their scripts served from the package, not a CDN
    app: FastAPI = FastAPIOffline(
        title="fashiongan",
        version=__version__,
        description="Generate, interpolate and inspect trained fashiongan generators.",
    )
    app.state.served = svc.served
    app.add_middleware(LimitRequestSize)
    _generation_routes(app, svc)
    _run_routes(app, svc)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def _generation_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "models": len(svc.served)}

    @app.get("/v1/models")
    def models() -> list[dict]:
        return [m.describe() for m in svc.served.values()]

    @app.get("/v1/generate", response_class=Response)
    async def generate_get(
        model: str | None = None,
        n: int = 10,
        class_: Annotated[list[str] | None, Query(alias="class")] = None,
        seed: Annotated[int, Query(ge=0, lt=2**63)] = 0,
        format: Literal["png", "npz", "json"] = "png",
        ncol: Annotated[int | None, Query(ge=1, le=64)] = None,
    ) -> Response:
        """Images as a grid PNG, an NPZ (images, labels, class_names) or JSON (base64 PNGs)."""
        return await svc.generate(
            GenerateRequest(model=model, n=n, classes=class_, seed=seed, format=format, ncol=ncol)
        )

    @app.post("/v1/generate", response_class=Response)
    async def generate_post(req: GenerateRequest) -> Response:
        """The same as GET, with a JSON body."""
        return await svc.generate(req)

    @app.get("/v1/interpolate", response_class=Response)
    async def interpolate(
        model: str | None = None,
        seeds: Annotated[list[int], Query()] = [0, 1],  # noqa: B006
        class_: Annotated[list[str] | None, Query(alias="class")] = None,
        steps: Annotated[int, Query(ge=2, le=64)] = 10,
        mode: Literal["slerp", "lerp"] = "slerp",
        format: Literal["png", "gif", "json"] = "png",
    ) -> Response:
        """Walks between seeds (class fixed by one `class`, or every class) or between two or
        more classes with z fixed: a PNG strip, a GIF, or JSON frames (base64 PNGs)."""
        m = svc.model(model)
        svc.check_seeds(seeds)
        ids = svc.class_ids(m, class_)
        svc.check_walks(m, seeds, ids, steps)

        def walk() -> tuple[bytes, str]:
            frames = interpolation_frames(m.gen, seeds, ids, steps, mode)
            if format == "json":
                walks = [
                    [base64.b64encode(png_bytes(f)).decode() for f in w] for w in frames.numpy()
                ]
                return json.dumps({"model": m.id, "walks": walks}).encode(), "application/json"
            media = "image/png" if format == "png" else "image/gif"
            return encode_interpolation(frames, format), media

        body, media_type = await svc.run_locked(walk)
        return Response(body, media_type=media_type, headers={"X-Model": m.id})


def _run_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/v1/runs/{run_id}/metrics")
    def run_metrics(run_id: str) -> dict:
        """The training curves (metrics.jsonl): `train` rows (losses, D outputs, gradient
        norms, ...) and `eval` rows (FID, IS, label accuracy over training)."""
        m = svc.run_of(run_id)
        path = m.run_dir / "metrics.jsonl"
        rows = read_metrics(path) if path.is_file() else []
        clean = [
            {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in r.items()}
            for r in rows
        ]
        return {
            "id": run_id,
            "train": [r for r in clean if "loss_d" in r],
            "eval": [r for r in clean if "fid" in r],
        }

    @app.get("/v1/runs/{run_id}/grids")
    def run_grids(run_id: str) -> dict:
        """The steps at which fixed-noise sample grids were saved."""
        return {"id": run_id, "steps": list(grid_files(svc.run_of(run_id)))}

    @app.get("/v1/runs/{run_id}/grids/{step}", response_class=FileResponse)
    def run_grid(run_id: str, step: int) -> FileResponse:
        """The fixed-noise grid saved at `step` (a PNG)."""
        files = grid_files(svc.run_of(run_id))
        if step not in files:
            raise HTTPException(404, f"no grid at step {step}; saved at: {list(files)[:20]}")
        return FileResponse(files[step], media_type="image/png")
