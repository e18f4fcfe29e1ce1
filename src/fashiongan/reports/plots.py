"""Training curves from metrics.jsonl rows, drawn with matplotlib's Agg backend."""

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fashiongan.fileio import atomic_write_bytes  # noqa: E402

# file name → (title, y label, [(key, legend)])
PANELS = {
    "losses.png": ("Losses", "loss", [("loss_d", "D"), ("loss_g", "G")]),
    "d_outputs.png": ("Discriminator outputs", "mean D(·)", [("d_real", "D(x)"), ("d_fake", "D(G(z))")]),
    "grad_norms.png": ("Gradient norms (before clipping)", "‖∇‖₂", [("grad_norm_d", "D"), ("grad_norm_g", "G")]),
    "throughput.png": ("Throughput", "images / s", [("img_per_s", "train")]),
}


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_training(records: list[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write one PNG per panel (x = thousands of images seen); returns the paths written."""
    out_dir = Path(out_dir)
    if not records:
        return []
    kimg = [r["kimg"] for r in records]
    written = []
    for name, (title, ylabel, series) in PANELS.items():
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for key, legend in series:
            ax.plot(kimg, [r.get(key, float("nan")) for r in records], label=legend, lw=1.2)
        ax.set(title=title, xlabel="thousands of real images seen (kimg)", ylabel=ylabel)
        if "grad" in name:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        atomic_write_bytes(out_dir / name, _figure_bytes(fig))
        written.append(out_dir / name)
    return written
