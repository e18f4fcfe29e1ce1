"""TensorBoard event files of a run (the `tensorboard` extra): every numeric metrics.jsonl column
as a scalar, the class × seed grids as images, the config as text and as hparams. Written live
by `train --tensorboard` into RUN/tensorboard, or afterwards from the run's files by
`fashiongan tensorboard RUN`. Offline: plain files, no server, no account.

    tensorboard --logdir runs/        # every run's RUN/tensorboard side by side
"""

import json
import math
import os
from pathlib import Path

import numpy as np

from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_dir, read_metrics

SUBDIR = "tensorboard"
# metrics.jsonl column → TensorBoard tag (grouped into panels); other numbers go to "other/"
TAGS = {
    "loss_d": "loss/D",
    "loss_g": "loss/G",
    "aux_loss_d": "loss/D_aux",
    "aux_loss_g": "loss/G_aux",
    "penalty": "loss/penalty",
    "d_real": "D/real",
    "d_fake": "D/fake",
    "grad_norm_d": "grad_norm/D",
    "grad_norm_g": "grad_norm/G",
    "lr_d": "lr/D",
    "lr_g": "lr/G",
    "instance_noise": "augment/instance_noise",
    "augment_p": "augment/ada_p",
    "img_per_s": "speed/img_per_s",
    "kimg": "progress/kimg",
    "epoch": "progress/epoch",
    "fid": "eval/fid",
    "inception_fid": "eval/inception_fid",
    "best_fid": "eval/best_fid",
    "is": "eval/is",
    "is_std": "eval/is_std",
    "label_accuracy": "eval/label_accuracy",
    "eval_seconds": "eval/seconds",
}


def tag_of(key: str) -> str:
    return TAGS.get(key, f"other/{key}")


def _flat(config: dict, prefix: str = "") -> dict:
    """A nested config → {"train.lr_g": 0.0002, ...} of hparams-friendly values."""
    out = {}
    for k, v in config.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, name + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[name] = v
        else:  # None, lists
            out[name] = json.dumps(v)
    return out


class TensorBoardWriter:
    """Event files in `log_dir`. purge_step: on a resume (or a rollback), events at and after
    this step are dropped by TensorBoard, so no step shows twice."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise FashionGANError(
                "--tensorboard needs the tensorboard package: pip install 'fashiongan[tensorboard]'"
            ) from None
        self.log_dir = Path(log_dir)
        self._make = lambda purge: SummaryWriter(str(self.log_dir), purge_step=purge)
        self.writer = self._make(purge_step)

    def scalars(self, row: dict) -> None:
        step = int(row["step"])
        for key, value in row.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key != "step" and number and math.isfinite(value):
                self.writer.add_scalar(tag_of(key), value, step)

    def image(self, png: Path, step: int, tag: str = "samples/class_x_seed") -> None:
        from PIL import Image

        with Image.open(png) as img:
            array = np.asarray(img.convert("RGB"))
        self.writer.add_image(tag, array, step, dataformats="HWC")

    def config(self, config: dict, final: dict | None = None) -> None:
        """The run's config as text (JSON) and as hparams; `final` (tag → value) are the hparams
        view's metric columns (the scalars of those tags must exist)."""
        from torch.utils.tensorboard.summary import hparams

        text = "```json\n" + json.dumps(config, indent=2) + "\n```"
        self.writer.add_text("config", text, 0)
        for summary in hparams(_flat(config), final or {"eval/fid": float("nan")}):
            self.writer.file_writer.add_summary(summary)

    def restart(self, purge_step: int) -> None:
        """After a rollback: drop the events from purge_step on."""
        self.writer.close()
        self.writer = self._make(purge_step)

    def close(self) -> None:
        self.writer.close()


def convert_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                force: bool = False) -> Path:  # fmt: skip
    """Event files from a finished (or running) run's config.json, metrics.jsonl and sample
    grids, into `out` (default RUN/tensorboard). The folder appears whole or not at all."""
    run = Path(run_dir)
    if not (run / "metrics.jsonl").is_file() or not (run / "config.json").is_file():
        raise FashionGANError(f"{run}: no metrics.jsonl and config.json (not a run directory?)")
    out = Path(out) if out else run / SUBDIR
    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise FashionGANError(f"{run / 'config.json'}: unreadable ({e})") from None
    rows = read_metrics(run / "metrics.jsonl")
    with atomic_dir(out, replace=force, hint="pass --force to replace it") as tmp:
        tb = TensorBoardWriter(tmp)
        for row in rows:
            tb.scalars(row)
        for png in sorted((run / "samples").glob("grid-*.png")):
            tb.image(png, int(png.stem.split("-")[1]))
        fids = [r["fid"] for r in rows if "fid" in r]
        tb.config(config, {"eval/fid": fids[-1]} if fids else None)
        tb.close()
    return out
