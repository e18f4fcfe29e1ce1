"""Training curves from metrics.jsonl rows, drawn on matplotlib Figure objects: no pyplot, so
importing this never switches the process's backend (inline figures in Jupyter keep working)."""

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from fashiongan.fileio import atomic_write_bytes

# panel → (title, y label, [(metrics.jsonl key, legend)])
PANELS = {
    "losses": (
        "Losses",
        "loss",
        [("loss_d", "D"), ("loss_g", "G"), ("aux_loss_d", "D class"), ("aux_loss_g", "G class")],
    ),
    "d_outputs": (
        "Discriminator outputs",
        "mean D(·) (σ for minimax/ns)",
        [("d_real", "D(x)"), ("d_fake", "D(G(z))")],
    ),
    "grad_norms": (
        "Gradient norms (before clipping)",
        "L2 norm",
        [("grad_norm_d", "D"), ("grad_norm_g", "G")],
    ),
    "throughput": ("Throughput", "images / s", [("img_per_s", "train")]),
}


class ShownFigure(Figure):
    """A Figure that Jupyter shows as a PNG when it ends a cell. (A plain Figure made without
    pyplot has no canvas manager, so IPython's inline backend prints only its repr.)"""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def plot_training(records: list[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write plots/training.png (training_figure). Returns the paths written (none without
    records)."""
    if not records:
        return []
    path = Path(out_dir) / "training.png"
    atomic_write_bytes(path, figure_png(training_figure(records)))
    return [path]


def training_figure(records: list[dict]) -> Figure:
    """One panel per entry of PANELS against kimg (thousands of real images seen), from
    metrics.jsonl rows. A Figure object: a notebook shows it inline, no pyplot involved."""
    kimg = [r["kimg"] for r in records]
    fig = ShownFigure(figsize=(11, 6.5))
    axes = fig.subplots(2, 2)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.08, hspace=0.45, wspace=0.22)
    for ax, (key, (title, ylabel, series)) in zip(axes.flat, PANELS.items()):
        for field, legend in series:
            if field.startswith("aux_") and not any(r.get(field) for r in records):
                continue  # the AC-GAN terms only when --aux-weight is on
            ax.plot(kimg, [r.get(field, float("nan")) for r in records], label=legend, lw=1.2)
        ax.set(title=title, xlabel="kimg (thousands of real images seen)", ylabel=ylabel)
        if key == "grad_norms":
            ax.set_yscale("log")
        if key == "d_outputs" and any("augment_p" in r for r in records):  # --augment ada
            twin = ax.twinx()
            twin.plot(kimg, [r.get("augment_p", float("nan")) for r in records], "k--", lw=1)
            twin.set(ylabel="ADA p (dashed)", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    return fig


def _eval_rows(records: list[dict]) -> list[dict]:
    return [r for r in records if "fid" in r]


def plot_evaluation(records: list[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write plots/eval.png from the --eval-every rows: FID (left), IS and label accuracy
    (right) against kimg. Nothing without such rows."""
    rows = _eval_rows(records)
    if not rows:
        return []
    kimg = [r["kimg"] for r in rows]
    fig = Figure(figsize=(11, 3.6))
    (ax_fid, ax_q) = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.93, top=0.9, bottom=0.15, wspace=0.3)
    ax_fid.plot(kimg, [r["fid"] for r in rows], marker="o", ms=3, lw=1.2)
    ax_fid.set(title="FID (evaluator features, real test split)", xlabel="kimg", ylabel="FID")
    ax_fid.grid(alpha=0.3)
    ax_q.plot(kimg, [r["is"] for r in rows], marker="o", ms=3, lw=1.2, label="IS (max 10)")
    ax_q.set(title="Inception Score and label accuracy", xlabel="kimg", ylabel="IS")
    ax_q.grid(alpha=0.3)
    if any("label_accuracy" in r for r in rows):
        ax_acc = ax_q.twinx()
        ax_acc.plot(
            kimg, [r.get("label_accuracy", float("nan")) for r in rows], color="C1", marker="s",
            ms=3, lw=1.2, label="label accuracy",
        )  # fmt: skip
        ax_acc.set_ylabel("label accuracy")
        ax_acc.set_ylim(0, 1)
        ax_acc.legend(loc="lower right", fontsize="small")
    ax_q.legend(loc="upper left", fontsize="small")
    path = Path(out_dir) / "eval.png"
    atomic_write_bytes(path, figure_png(fig))
    return [path]


def plot_fid_curves(curves: dict[str, list[dict]], path: str | os.PathLike) -> Path:
    """One figure, one FID-over-kimg line per run (compare)."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for name, records in curves.items():
        rows = _eval_rows(records)
        if rows:
            ax.plot([r["kimg"] for r in rows], [r["fid"] for r in rows], marker="o", ms=3,
                    lw=1.2, label=name)  # fmt: skip
    ax.set(title="FID over training (evaluator features)", xlabel="kimg", ylabel="FID")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig))
    return Path(path)


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
