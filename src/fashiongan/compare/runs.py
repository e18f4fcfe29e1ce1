"""`fashiongan compare` and `fashiongan sweep`: train one recipe per loss, per preset, or per
point of a grid of settings, with the same budget and seeds, each in its own process (`--jobs` at
a time, with one progress line for all of them), evaluate every run the same way, and write a
table (Markdown + CSV, mean ± std over seeds), one figure of FID over training for all runs, and
their samples side by side.

A run directory that already holds checkpoints/final.pt is evaluated, not retrained, so an
interrupted comparison continues where it stopped.
"""

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fashiongan._version import __version__
from fashiongan.config import RunConfig, from_dict, to_dict
from fashiongan.devices import pick_device
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_write_bytes, read_metrics
from fashiongan.imaging import save_png
from fashiongan.losses import LOSSES
from fashiongan.metrics.defaults import CAS_PER_CLASS, NUM_SAMPLES
from fashiongan.metrics.evaluate import evaluate
from fashiongan.metrics.evaluator import Evaluator, load_evaluator
from fashiongan.reports.plots import plot_fid_curves
from fashiongan.sampling import class_seed_grid, load_generator
from fashiongan.validation import validate

DEFAULT_LOSSES = ("ragan", "ns", "minimax", "lsgan", "hinge", "wgan-gp")
TABLE_KEYS = ("fid", "kid", "is", "precision", "recall", "label_accuracy", "cas")


@dataclass
class Variant:
    name: str  # e.g. "hinge-s0"
    label: str  # the loss or preset it stands for
    seed: int
    cfg: RunConfig
    note: str = ""  # a setting changed from the base so the variant can train at all


@dataclass
class Outcome:
    variant: Variant
    run_dir: Path
    ok: bool
    wall_s: float = 0.0
    error: str = ""
    results: dict = field(default_factory=dict)
    img_per_s: float = float("nan")
    kimg: float = float("nan")


def loss_variants(base: dict, losses: list[str], seeds: list[int]) -> list[Variant]:
    """The base config once per loss and seed, each fitted to its loss where the base does not
    fit it (e.g. WGAN-GP gets --d-norm none: its penalty needs per-sample critic outputs); what
    was changed is said in the table."""
    variants = []
    for loss in losses:
        for seed in seeds:
            d = json.loads(json.dumps(base))
            d.setdefault("loss", {})["loss"] = loss
            d.setdefault("train", {})["seed"] = seed
            d["name"] = f"{loss}-s{seed}"
            note = "; ".join(LOSSES.get(loss).adapt(d))
            variants.append(Variant(d["name"], loss, seed, from_dict(d, f"compare {loss}"), note))
    return variants


def preset_variants(presets: dict[str, dict], seeds: list[int]) -> list[Variant]:
    variants = []
    for name, d in presets.items():
        for seed in seeds:
            d2 = json.loads(json.dumps(d))
            d2.setdefault("train", {})["seed"] = seed
            d2["name"] = f"{name}-s{seed}"
            variants.append(Variant(d2["name"], name, seed, from_dict(d2, f"preset {name}")))
    return variants


def grid_variants(points: list[tuple[str, RunConfig]], seeds: list[int]) -> list[Variant]:
    """One variant per grid point and seed. points: (label such as "lr_g=1e-3 width=1",
    the base with that point's settings applied)."""
    variants = []
    for label, cfg in points:
        slug = re.sub(r"[^A-Za-z0-9.=+-]+", "_", label).replace("=", "-")
        for v in preset_variants({slug: to_dict(cfg)}, seeds):
            v.label = label
            variants.append(v)
    return variants


def progress_line(variants: list[Variant], state: dict[str, str], out: Path, seconds: float):
    """One line for every run of a comparison: counts, then each running run's step, kimg and
    latest FID (from its metrics.jsonl)."""
    counts = {k: sum(1 for v in variants if state.get(v.name, "queued") == k)
              for k in ("done", "running", "queued", "failed")}  # fmt: skip
    running = []
    for v in variants:
        if state.get(v.name) != "running":
            continue
        path = out / "runs" / v.name / "metrics.jsonl"
        rows = read_metrics(path) if path.is_file() else []
        row = next((r for r in reversed(rows) if "loss_d" in r), None)
        fid = next((r["fid"] for r in reversed(rows) if "fid" in r), None)
        where = "starting" if row is None else f"step {row['step']} {row['kimg']:.1f} kimg"
        running.append(f"{v.name} {where}" + (f" FID {fid:.2f}" if fid is not None else ""))
    head = (f"[{seconds:5.0f} s] {counts['done']}/{len(variants)} done, {counts['running']} "
            f"running, {counts['queued']} queued")  # fmt: skip
    if counts["failed"]:
        head += f", {counts['failed']} failed"
    return head + (" | " + "; ".join(running) if running else "")


def _train_one(v: Variant, out: Path, threads: int, env: dict) -> Outcome:
    run_dir = out / "runs" / v.name
    if (run_dir / "checkpoints" / "final.pt").is_file():
        v.note = (v.note + "; " if v.note else "") + "trained earlier, reused"
        return Outcome(v, run_dir, True)
    if run_dir.exists():  # a half-finished earlier attempt: start over cleanly
        shutil.rmtree(run_dir)
    cfg_path = out / "configs" / f"{v.name}.json"
    d = to_dict(v.cfg)
    d["log"]["progress"] = False
    if threads and not d["train"]["threads"]:
        d["train"]["threads"] = threads
    atomic_write_bytes(cfg_path, (json.dumps(d, indent=2) + "\n").encode())
    log_path = out / "logs" / f"{v.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fashiongan", "train", "--config", str(cfg_path),
           "--out", str(run_dir)]  # fmt: skip
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - start
    if rc != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return Outcome(v, run_dir, False, wall, lines[-1] if lines else f"exit status {rc}")
    return Outcome(v, run_dir, True, wall)


def _throughput(run_dir: Path) -> tuple[float, float]:
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "loss_d" in r]
    if not rows:
        return float("nan"), float("nan")
    return float(np.mean([r["img_per_s"] for r in rows])), float(rows[-1]["kimg"])


def side_by_side(outcomes: list[Outcome], seeds: int = 4) -> Image.Image:
    """Each run's class × seed grid (seeds 0..seeds-1), side by side under its name."""
    tiles = []
    for o in outcomes:
        if not o.ok:
            continue
        gen = load_generator(o.run_dir)
        tiles.append((o.variant.name, class_seed_grid(gen, list(range(seeds))).convert("L")))
    if not tiles:
        raise FashionGANError("no run finished; nothing to show")
    font = ImageFont.load_default()
    gap, head = 12, 18
    width = sum(t.width for _, t in tiles) + gap * (len(tiles) - 1)
    height = max(t.height for _, t in tiles) + head
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    x = 0
    for name, tile in tiles:
        draw.text((x + 4, 3), name, fill=0, font=font)
        canvas.paste(tile, (x, head))
        x += tile.width + gap
    return canvas


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def seed_summary(outcomes: list[Outcome], kind: str = "loss/preset") -> list[str]:
    """Markdown lines: mean ± std over seeds per loss/preset or grid point (none when each ran
    once)."""
    by_label: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.ok:
            by_label.setdefault(o.variant.label, []).append(o)
    if all(len(v) < 2 for v in by_label.values()):
        return []
    names = {"fid": "FID", "kid": "KID×1000", "is": "IS", "precision": "precision",
             "recall": "recall", "label_accuracy": "label acc", "cas": "CAS"}  # fmt: skip
    keys = [k for k in TABLE_KEYS if any(k in o.results for v in by_label.values() for o in v)]
    lines = ["", "Mean ± std over seeds:", "",
             f"| {kind} | seeds | " + " | ".join(names[k] for k in keys) + " |",
             "| --- | ---: |" + " ---: |" * len(keys)]  # fmt: skip
    for label, runs in by_label.items():
        cells = []
        for k in keys:
            values = [o.results[k] for o in runs if o.results.get(k) is not None]
            scale = 1000 if k == "kid" else 1
            v = np.array(values, dtype=float) * scale
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}" if len(v) else "—")
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines


def write_tables(
    outcomes: list[Outcome], out: Path, floors: dict, header: list[str], kind: str = "loss/preset"
) -> None:
    cols = ["run", kind, "seed", *TABLE_KEYS, "best_fid", "img_per_s", "kimg", "wall_s",
            "note"]  # fmt: skip
    rows = []
    for o in outcomes:
        r = o.results
        row = {"run": o.variant.name, kind: o.variant.label, "seed": o.variant.seed}
        for k in TABLE_KEYS:
            row[k] = r.get(k)
        row["best_fid"] = o.results.get("best_fid")
        row.update(img_per_s=o.img_per_s, kimg=o.kimg, wall_s=o.wall_s)
        row["note"] = o.variant.note if o.ok else f"FAILED: {o.error}"
        rows.append(row)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_bytes(out / "compare.csv", buf.getvalue().encode())
    md = header + [
        "",
        "| run | FID | KID×1000 | IS | precision | recall | label acc | CAS | best FID in "
        "training | img/s | kimg | wall s | note |",
        "| --- |" + " ---: |" * 11 + " --- |",
    ]
    for row in rows:
        kid = row["kid"] * 1000 if row["kid"] is not None else None
        md.append(
            f"| {row['run']} | {_fmt(row['fid'])} | {_fmt(kid)} | {_fmt(row['is'])} | "
            f"{_fmt(row['precision'])} | {_fmt(row['recall'])} | "
            f"{_fmt(row['label_accuracy'], 4)} | {_fmt(row['cas'], 4)} | "
            f"{_fmt(row['best_fid'])} | {_fmt(row['img_per_s'], 0)} | {_fmt(row['kimg'], 1)} | "
            f"{_fmt(row['wall_s'], 0)} | {row['note']} |"
        )
    if floors:
        kid = floors["kid"] * 1000 if floors.get("kid") is not None else None
        md.append(
            f"| *real vs real (floor)* | {_fmt(floors.get('fid'))} | {_fmt(kid)} | "
            f"{_fmt(floors.get('is'))} | {_fmt(floors.get('precision'))} | "
            f"{_fmt(floors.get('recall'))} | {_fmt(floors.get('label_accuracy'), 4)} | "
            f"{_fmt(floors.get('cas'), 4)} | | | | | |"
        )
    md += seed_summary(outcomes, kind)
    md += ["", "![FID over training](fid.png)", "", "![samples](samples.png)", ""]
    atomic_write_bytes(out / "compare.md", "\n".join(md).encode())


def compare(
    variants: list[Variant],
    out: Path,
    jobs: int = 1,
    num_samples: int = NUM_SAMPLES,
    with_cas: bool = False,
    cas_per_class: int = CAS_PER_CLASS,
    evaluator: Evaluator | None = None,
    cache_dir: Path | None = None,
    env: dict | None = None,
    log=print,
    progress_every: float = 15.0,
    kind: str = "loss/preset",
) -> list[Outcome]:
    """Train every variant (jobs at a time), evaluate each, write compare.md/.csv, fid.png and
    samples.png into `out`. Every progress_every seconds while training, one progress line for
    all runs. kind names what the variants' labels are (the tables' column)."""
    if not variants:
        raise FashionGANError("nothing to compare: give --losses or --presets")
    if jobs < 1:
        raise FashionGANError(f"--jobs {jobs}: must be at least 1")
    for v in variants:  # every error before any training starts
        try:
            validate(v.cfg)
        except FashionGANError as e:
            raise FashionGANError(f"{v.name}: {e}") from None
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = dict(os.environ if env is None else env)
    log(f"training {len(variants)} runs, {jobs} at a time ({threads} threads each) → {out}")
    outcomes = _train_all(variants, out, jobs, threads, env, log, progress_every)
    floors, evaluator_id = {}, ""
    for o in outcomes:
        if o.ok:
            log(f"evaluating {o.variant.name}")
            ev = _evaluate_one(o, num_samples, with_cas, cas_per_class, evaluator, cache_dir, env)
            floors = floors or ev.results.get("floors", {})
            evaluator_id = ev.results["provenance"]["evaluator"]
    curves = {o.variant.name: read_metrics(o.run_dir / "metrics.jsonl") for o in outcomes if o.ok}
    if any(any("fid" in r for r in rows) for rows in curves.values()):
        plot_fid_curves(curves, out / "fid.png")
    if any(o.ok for o in outcomes):
        save_png(out / "samples.png", side_by_side(outcomes))
    header = _header(variants[0].cfg, kind, num_samples, evaluator_id, jobs, threads)
    write_tables(outcomes, out, floors, header, kind)
    return outcomes


def _train_all(variants, out: Path, jobs: int, threads: int, env: dict, log, every: float):
    """Train the variants, `jobs` at a time, with a progress line for all every `every` s."""
    state: dict[str, str] = {}

    def run(v: Variant) -> Outcome:
        state[v.name] = "running"
        log(f"  start {v.name}")
        o = _train_one(v, out, threads, env)
        state[v.name] = "done" if o.ok else "failed"
        status = "ok" if o.ok else f"FAILED ({o.error})"
        log(f"  done  {v.name}: {status} {o.wall_s:.0f} s")
        return o

    finished, started = threading.Event(), time.perf_counter()

    def report() -> None:
        while not finished.wait(every):
            log(progress_line(variants, state, out, time.perf_counter() - started))

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(run, variants))
    finally:
        finished.set()
        reporter.join()


def _evaluate_one(o: Outcome, num_samples, with_cas, cas_per_class, evaluator, cache_dir, env):
    """Score a trained variant (its results go into the outcome) and return the Evaluation."""
    o.img_per_s, o.kimg = _throughput(o.run_dir)
    rows = [r for r in read_metrics(o.run_dir / "metrics.jsonl") if "fid" in r]
    metrics = ["fid", "kid", "is", "prdc"]
    if o.variant.cfg.model.cond != "none":
        metrics += ["label_accuracy"] + (["cas"] if with_cas else [])
    ev = evaluate(
        o.run_dir,
        metrics=metrics,
        num_samples=num_samples,
        out=o.run_dir / "eval",
        evaluator=evaluator or load_evaluator(o.variant.cfg.log.evaluator),
        cache_dir=cache_dir,
        data=o.variant.cfg.data.data,
        env_dir=env.get("FASHIONGAN_DATA"),
        device=pick_device(o.variant.cfg.train.device),
        cas_per_class=cas_per_class,
        log=lambda s: None,
    )
    o.results = dict(ev.results)
    o.results["best_fid"] = min((r["fid"] for r in rows), default=None)
    return ev


def _header(first: RunConfig, kind: str, num_samples, evaluator_id, jobs, threads) -> list[str]:
    """compare.md's opening lines: the budget, the evaluation and the machine."""
    t = first.train
    budget = ", ".join(
        f"{k} {v}"
        for k, v in (
            ("epochs", t.epochs),
            ("steps", t.steps),
            ("kimg", t.kimg),
            ("max_time", t.max_time),
        )
        if v  # fmt: skip
    )
    return [
        "# fashiongan compare" if kind == "loss/preset" else f"# fashiongan sweep over {kind}",
        "",
        f"- budget per run: {budget}; batch {t.batch_size}; model {first.model.model} "
        f"cond={first.model.cond} width {first.model.width}",
        f"- evaluation: {num_samples} samples per run (EMA G), features of evaluator "
        f"{evaluator_id or '(none)'} vs the real test split; --eval-every "
        f"{first.log.eval_every} steps on {first.log.eval_samples}",
        f"- {jobs} job(s) at a time, {threads} thread(s) each; fashiongan {__version__}, "
        f"torch {torch.__version__}, device {t.device}",
    ]
