"""An evaluation written out: metrics.json (flat keys + floors + provenance), a Markdown report,
its figures (confusion matrix, class histogram, closest training pairs, samples), and the table
printed on the terminal."""

import json
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from fashiongan.fileio import atomic_write_bytes
from fashiongan.imaging import display_scale, label_rows, make_grid, save_png
from fashiongan.reports.plots import figure_png

# key → (label, better: "low" | "high" | "ceiling", format)
ROWS = {
    "fid": ("FID", "low", "{:.3f}"),
    "kid": ("KID ×1000", "low", "{:.3f}"),
    "is": ("IS", "high", "{:.3f}"),
    "precision": ("precision", "high", "{:.3f}"),
    "recall": ("recall", "high", "{:.3f}"),
    "density": ("density", "high", "{:.3f}"),
    "coverage": ("coverage", "high", "{:.3f}"),
    "label_accuracy": ("label accuracy", "high", "{:.4f}"),
    "class_fid_mean": ("per-class FID (mean)", "low", "{:.3f}"),
    "class_entropy": ("class entropy (nats)", "high", "{:.3f}"),
    "nn_pixel": ("NN pixel RMS to train", "high", "{:.4f}"),
    "nn_feature": ("NN feature dist. to train", "high", "{:.3f}"),
    "near_copies": ("near-copy share", "low", "{:.4f}"),
    "cas": ("CAS (test accuracy)", "high", "{:.4f}"),
    "cas_ratio": ("CAS / real", "high", "{:.3f}"),
    "cas_reverse": ("reverse CAS", "high", "{:.4f}"),
    # --features inception: ImageNet Inception-v3 features, comparable with papers
    "inception_fid": ("Inception FID", "low", "{:.3f}"),
    "inception_kid": ("Inception KID ×1000", "low", "{:.3f}"),
    "inception_is": ("Inception IS", "high", "{:.3f}"),
    "inception_precision": ("Inception precision", "high", "{:.3f}"),
    "inception_recall": ("Inception recall", "high", "{:.3f}"),
}


def _fmt(key: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if key in ("kid", "kid_std", "inception_kid", "inception_kid_std"):
        value = value * 1000
    return display_rows()[key][2].format(value)


def display_rows() -> dict:
    """ROWS, then the rows the registered metrics declare for keys ROWS does not know."""
    from fashiongan.metrics.suite import METRICS

    extra = {
        key: (label, better, fmt)
        for name in METRICS.names()
        for key, label, better, fmt in METRICS.get(name).rows
    }
    return {**ROWS, **{k: v for k, v in extra.items() if k not in ROWS}}


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(metric, value, real-vs-real floor, better) for every reported scalar."""
    floors = results.get("floors", {})
    rows = []
    for key, (label, better, _) in display_rows().items():
        if key not in results:
            continue
        value = _fmt(key, results[key])
        if key in ("kid", "is", "inception_kid", "inception_is") and f"{key}_std" in results:
            value += f" ± {_fmt(key, results[f'{key}_std'])}"
        arrow = {"low": "lower", "high": "higher"}[better]
        rows.append((label, value, _fmt(key, floors.get(key)), arrow))
    return rows


def format_table(results: dict) -> str:
    rows = [("metric", "value", "real floor", "better")] + table_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_confusion(cm: np.ndarray, class_names: tuple[str, ...]) -> bytes:
    """Rows: requested class; columns: the evaluator's prediction; cells: share of the row."""
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(share):
        if v >= 0.005:
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 else "black")  # fmt: skip
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set(xlabel="predicted by the evaluator", ylabel="requested class", title="Label accuracy")
    fig.tight_layout()
    return figure_png(fig)


def plot_histogram(shares: list[float], floor: list[float] | None, names) -> bytes:
    fig = Figure(figsize=(7.5, 3.5))
    ax = fig.subplots()
    x = np.arange(len(shares))
    ax.bar(x - 0.2, shares, 0.4, label="evaluated")
    if floor is not None:
        ax.bar(x + 0.2, floor, 0.4, label="real", alpha=0.7)
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="share of images", title="Predicted classes")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return figure_png(fig)


def closest_pairs_image(pairs, scale: int = 3) -> Image.Image:
    """Top row: the judged images nearest to a training image; bottom row: that image
    (upscaled `scale`× so 28-pixel images can be seen)."""
    generated, train, _ = pairs
    grid = make_grid(np.concatenate([generated.numpy(), train.numpy()]), len(generated))
    img = Image.fromarray(grid)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _sample_grid(images, labels, class_names) -> object:
    images = images.numpy()
    if labels is None:
        return make_grid(images[:100], 10)
    labels = labels.numpy()
    rows, names = [], []
    for c in range(len(class_names)):
        members = images[labels == c][:10]
        if len(members) == 10:
            rows.append(members)
            names.append(class_names[c])
    if not rows:
        return make_grid(images[:100], 10)
    grid = make_grid(np.concatenate(rows), 10)
    return label_rows(grid, names, images.shape[-1], scale=display_scale(images.shape[-1]))


def write_report(
    out_dir: str | os.PathLike,
    results: dict,
    artifacts: dict,
    images,
    labels,
    class_names: tuple[str, ...],
) -> list[Path]:
    """Write metrics.json, report.md and the figures into out_dir; returns the paths."""
    out = Path(out_dir)
    written = []

    def put(name: str, data: bytes) -> None:
        atomic_write_bytes(out / name, data)
        written.append(out / name)

    save_png(out / "samples.png", _sample_grid(images, labels, class_names))
    written.append(out / "samples.png")
    figures = ["samples.png"]
    if "confusion" in artifacts:
        put("confusion.png", plot_confusion(artifacts["confusion"], class_names))
        figures.append("confusion.png")
    if "class_histogram" in artifacts:
        floor = results.get("floors", {}).get("class_histogram")
        put("class_histogram.png", plot_histogram(artifacts["class_histogram"], floor, class_names))
        figures.append("class_histogram.png")
    if "closest_pairs" in artifacts:
        save_png(out / "closest_pairs.png", closest_pairs_image(artifacts["closest_pairs"]))
        written.append(out / "closest_pairs.png")
        figures.append("closest_pairs.png")
    put("metrics.json", (json.dumps(results, indent=2) + "\n").encode())
    put("report.md", render_markdown(results, figures, class_names).encode())
    return written


def _reference_line(p: dict) -> str:
    if p["split"] == "against":
        return f"{p['reference']} ({p['n_real']} images)"
    where = f"real {p['split']} split" if "reference" not in p else p["reference"]
    return f"{where} ({p['n_real']} images, checksum `{p['reference_checksum'][:16]}`)"


def render_markdown(results: dict, figures: list[str], class_names) -> str:
    p = results["provenance"]
    lines = [
        "# fashiongan evaluation",
        "",
        f"- source: {p['source']}",
        f"- evaluator: `{p['evaluator']}` (test accuracy {p['evaluator_test_accuracy']})",
        f"- reference: {_reference_line(p)}; judged images: {p['n_fake']}; seed {p['seed']}",
        f"- floor: {p['floor']}",
        f"- fashiongan {p['version']}, torch {p['torch']}, {p['time']}, {p['seconds']} s",
        *[f"- note: {n}" for n in p.get("notes", [])],
        "",
        "| metric | value | real-vs-real floor | better |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(results)]
    per_class = [k for k in ("class_accuracy", "class_fid", "class_histogram") if k in results]
    if per_class:
        lines += [
            "",
            "| class | " + " | ".join(per_class) + " |",
            "| --- |" + " --- |" * len(per_class),
        ]
        for c, name in enumerate(class_names):
            cells = []
            for k in per_class:
                v = results[k][c]
                cells.append("—" if v is None else f"{v:.3f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""] + [f"![{f}]({f})" for f in figures] + [""]
    if "closest_pairs.png" in figures:
        lines.insert(
            -1,
            "closest_pairs.png: top row, the judged images nearest to a training image; "
            "bottom row, that training image.",
        )
    return "\n".join(lines)
