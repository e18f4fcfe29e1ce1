"""Training curves from metrics.jsonl rows, drawn with matplotlib's Agg backend."""

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fashiongan.fileio import atomic_write_bytes  # noqa: E402

# panel → (title, y label, [(metrics.jsonl key, legend)])
PANELS = {
    "losses": ("Losses", "loss", [("loss_d", "D"), ("loss_g", "G")]),
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


def plot_training(records: list[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write plots/training.png: one panel per entry of PANELS (x = thousands of real images
    seen). Returns the paths written (none without records)."""
    out_dir = Path(out_dir)
    if not records:
        return []
    kimg = [r["kimg"] for r in records]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    fig.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.08, hspace=0.45, wspace=0.22)
    for ax, (key, (title, ylabel, series)) in zip(axes.flat, PANELS.items()):
        for field, legend in series:
            ax.plot(kimg, [r.get(field, float("nan")) for r in records], label=legend, lw=1.2)
        ax.set(title=title, xlabel="kimg (thousands of real images seen)", ylabel=ylabel)
        if key == "grad_norms":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    path = out_dir / "training.png"
    atomic_write_bytes(path, buf.getvalue())
    return [path]
