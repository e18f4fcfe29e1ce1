"""What a run tells the user while it trains: metrics.jsonl, log.txt, a progress bar."""

import json
import sys
from pathlib import Path

from tqdm import tqdm

from fashiongan.fileio import atomic_write_bytes, read_metrics
from fashiongan.progress import progress_bar


class Monitor:
    """Appends one JSON object per log tick to metrics.jsonl and mirrors console lines to
    log.txt. On resume, rows after the checkpoint's step are dropped so no step appears twice."""

    def __init__(
        self,
        run_dir: Path,
        total: int | None,
        initial: int,
        progress: bool,
        resume_step: int | None = None,
        writer: bool = True,
        tensorboard: dict | None = None,
    ):
        """writer=False (ranks other than 0 under torchrun): keeps the rows in memory, writes
        and prints nothing. tensorboard: the run's config, to mirror everything into
        RUN/tensorboard event files too (--tensorboard)."""
        self.metrics_path = run_dir / "metrics.jsonl"
        self.tb = None
        if tensorboard is not None and writer:
            from fashiongan.tracking import SUBDIR, TensorBoardWriter

            purge = None if resume_step is None else resume_step + 1
            self.tb = TensorBoardWriter(run_dir / SUBDIR, purge_step=purge)
            if resume_step is None:
                self.tb.config(tensorboard)
        self.records: list[dict] = []
        self.writer = writer
        if resume_step is not None and self.metrics_path.exists():
            self.records = read_metrics(self.metrics_path)
            if writer:
                self._rewrite(resume_step)
        self._metrics = open(self.metrics_path, "a", encoding="utf-8") if writer else None
        self._log = open(run_dir / "log.txt", "a", encoding="utf-8") if writer else None
        self.bar = progress_bar(
            progress and writer,  # a terminal or a notebook; never a redirected log
            total=total,
            initial=initial,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            leave=False,
        )

    def _rewrite(self, last_step: int) -> None:
        """Keep the rows up to last_step, and atomically replace metrics.jsonl with them."""
        self.records = [r for r in self.records if r["step"] <= last_step]
        text = "".join(json.dumps(r) + "\n" for r in self.records)
        atomic_write_bytes(self.metrics_path, text.encode())

    def truncate(self, last_step: int) -> None:
        """Forget the rows after last_step (a rollback); the progress bar goes back too."""
        self._metrics.close()
        self._rewrite(last_step)
        self._metrics = open(self.metrics_path, "a", encoding="utf-8")
        if self.tb is not None:
            self.tb.restart(last_step + 1)
        self.bar.n = last_step
        self.bar.refresh()

    def record(self, row: dict) -> None:
        self.records.append(row)
        if not self.writer:
            return
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()
        if self.tb is not None:
            self.tb.scalars(row)
        if "loss_d" not in row:  # an --eval-every row
            return
        self.bar.set_postfix_str(
            f"D {row['loss_d']:.3f} G {row['loss_g']:.3f} {row['img_per_s']:.0f} img/s",
            refresh=False,
        )

    def grid(self, path: Path, step: int) -> None:
        """A class × seed grid just written: into the TensorBoard events too."""
        if self.tb is not None:
            self.tb.image(path, step)

    def train_records(self) -> list[dict]:
        return [r for r in self.records if "loss_d" in r]

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def print(self, line: str) -> None:
        """A console line that does not break the progress bar; also written to log.txt."""
        if not self.writer:
            return
        tqdm.write(line, file=sys.stdout)
        self._log.write(line + "\n")
        self._log.flush()

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()
        for f in (self._metrics, self._log):
            if f is not None:
                f.close()
