"""The training loop: the schedule (learning rates, instance noise, budgets), logging, grids,
periodic evaluation and checkpoints around the training step.

The maths of one step lives in step.py, the run's state on disk (checkpoints, resume, rollback)
in state.py; this module decides when each happens. Everything random draws from one seeded
generator whose state is checkpointed with the data position, so a resumed run on CPU continues
bit for bit as if it had never stopped.
"""

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fashiongan.checkpoint import resolve_checkpoint, save_checkpoint, serialize
from fashiongan.config import RunConfig, to_dict
from fashiongan.data.datasets import (
    Batcher,
    ImageDataset,
    default_cache_dir,
)
from fashiongan.devices import pick_device
from fashiongan.errors import FashionGANError
from fashiongan.fileio import DirectoryLock, atomic_write_bytes
from fashiongan.imaging import save_png, write_progress_gif
from fashiongan.reports.plots import plot_evaluation, plot_training
from fashiongan.sampling import LoadedGenerator, class_seed_grid, recalibrate_batchnorm
from fashiongan.training import report, state
from fashiongan.training.accel import adam_kind, resolve_precision, set_lr
from fashiongan.training.distributed import Ranks, agree_any, setup
from fashiongan.training.health import CollapseWatch, nan_message
from fashiongan.training.monitor import Monitor
from fashiongan.training.setup import build_nets, check_distributable, training_data
from fashiongan.training.state import check_fresh_run_dir
from fashiongan.training.step import STAT_KEYS, TrainingStep  # noqa: F401 - STAT_KEYS: API
from fashiongan.validation import validate


@dataclass
class RunResult:
    run_dir: Path
    final_checkpoint: Path
    step: int
    nimg: int
    seconds: float
    stopped_by: str
    trained_nimg: int = 0  # images D saw in this invocation (a resumed run's nimg counts all)


class StopFlag:
    """Set by a signal handler (in the CLI); the loop finishes its step and checkpoints."""

    def __init__(self):
        self.requested = False


def _planned_nimg(cfg: RunConfig, n_data: int) -> int | None:
    t = cfg.train
    options = []
    if t.epochs:
        options.append(t.epochs * (n_data // t.batch_size) * t.batch_size)
    if t.steps:
        options.append(t.steps * t.d_steps * t.batch_size)
    if t.kimg:
        options.append(int(t.kimg * 1000))
    return min(options) if options else None


def planned_steps(cfg: RunConfig, n_data: int) -> int | None:
    """Steps the step/epoch/kimg budgets allow (None when only --max-time bounds the run)."""
    nimg = _planned_nimg(cfg, n_data)
    return None if nimg is None else math.ceil(nimg / (cfg.train.d_steps * cfg.train.batch_size))


GRID_CLASSES = 20  # the training grid's rows at most: a set of 300 classes shows 20 of them
PERIOD_IMAGES = 10_000  # the least images between two per-epoch grids and checkpoints


class Trainer:
    """Holds the models, optimisers and state of one run; `run()` trains until a budget ends."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        resume: bool = False,
        data_env: str | None = None,
        stop: StopFlag | None = None,
        override: bool = False,
        cache_dir: Path | None = None,
        ranks: Ranks | None = None,
    ):
        validate(cfg)
        self.cfg, self.run_dir, self.stop = cfg, Path(run_dir), stop or StopFlag()
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.ranks = ranks or setup(t.device)
        if self.ranks.enabled:
            check_distributable(cfg, self.ranks)
        self.device = pick_device(t.device)
        if self.ranks.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ranks.local_rank)
        self.precision = resolve_precision(t.precision, self.device)
        self.adam_kind = adam_kind(t.adam, self.device)
        resumed = (
            state.resume_state(self.run_dir, cfg, override, self.ranks.main) if resume else None
        )
        self.data: ImageDataset = training_data(cfg, data_env, cache_dir)
        torch.manual_seed(t.seed)
        self.nets = build_nets(
            cfg, self.data.n_classes, self.device, self.ranks, self.adam_kind, self.data.channels
        )
        self.G, self.D, self.ema = self.nets.G, self.nets.D, self.nets.ema
        self.opt_G, self.opt_D = self.nets.opt_G, self.nets.opt_D
        self.ema_calibrated_at: int | None = None  # the step G_ema's BatchNorm statistics are from
        self.batcher = Batcher(
            self.data.images,
            self.data.labels,
            t.batch_size,
            t.seed,
            self.device,
            torch.channels_last if t.channels_last else torch.contiguous_format,
            self.ranks.shard(t.batch_size),
        )
        self.update = TrainingStep(
            cfg,
            self.nets,
            self.batcher,
            self.data.n_classes,
            self.ranks,
            self.device,
            self.precision,
        )
        self._init_counters()
        if resumed is not None:
            state.restore(self, resumed)
        # a resumed run with no checkpoint yet (killed before its first) starts over at step 0
        self.resumed_from = (int(resumed["step"]) if resumed is not None else 0) if resume else None
        self.periodic_eval = None
        if cfg.log.eval_every:
            from fashiongan.training.periodic_eval import PeriodicEval

            self.periodic_eval = PeriodicEval(
                cfg.log.eval_samples,
                cache_dir or default_cache_dir(),
                cfg.data.data,
                data_env,
                self.device,
                cfg.log.evaluator,
                cfg.log.inception_weights if cfg.log.eval_features == "inception" else False,
            )

    def _init_counters(self) -> None:
        t = self.cfg.train
        self.step, self.nimg = 0, 0
        self.elapsed = 0.0  # seconds trained in this invocation (what --max-time bounds)
        self.planned = planned_steps(self.cfg, len(self.data))
        # the instance-noise schedule is fixed at the start, so a resume with a new budget
        # keeps the schedule the run began with
        self.noise_nimg = (
            t.noise_kimg * 1000 if t.noise_kimg else _planned_nimg(self.cfg, len(self.data))
        )
        self.best_fid = math.inf
        self.lr_scale, self.rollbacks = 1.0, 0  # --on-nan rollback halves lr_scale
        self.skipped = 0  # --on-nan skip: updates skipped so far
        self.skipped_in_a_row = 0  # steps
        self.collapse = CollapseWatch(self.update.loss)
        self.last_good: bytes | None = None  # --on-nan rollback: the last checkpoint's bytes

    def describe(self) -> str:
        return report.describe(self)

    # --- state (state.py) ------------------------------------------------------------------
    @property
    def stats(self) -> torch.Tensor:
        return self.update.stats

    def state_dict(self) -> dict:
        return state.state_of(self)

    def save(self, final: bool = False) -> Path:
        return state.save(self, final)

    # --- sampling ----------------------------------------------------------------------
    def calibrate_ema(self) -> None:
        """Re-estimate G_ema's BatchNorm statistics, once per step: each EMA update copies G's
        statistics over them, and the end of an epoch samples a grid and then saves."""
        if self.ema and self.ema_calibrated_at != self.step:
            recalibrate_batchnorm(self.ema.G_ema, self.data.n_classes, self.cfg.model.z_dim)
            self.ema_calibrated_at = self.step

    def sampler(self) -> LoadedGenerator:
        self.calibrate_ema()
        G = self.ema.G_ema if self.ema else self.G
        return LoadedGenerator(
            G,
            self.data.class_names,
            self.cfg.model.z_dim,
            self.cfg.model.cond != "none",
            self.data.image_size,
            self.step,
            to_dict(self.cfg),
            self.device,
        )

    def write_grid(self) -> Path:
        was_training = self.G.training
        self.G.eval()
        try:
            n, k = self.data.n_classes, GRID_CLASSES  # rows: every class, or k spread over many
            rows = None if n <= k else [i * n // k for i in range(k)]
            grid = class_seed_grid(self.sampler(), list(range(self.cfg.log.grid_seeds)), rows)
        finally:
            self.G.train(was_training)
        path = self.run_dir / "samples" / f"grid-{self.step:07d}.png"
        save_png(path, grid)
        return path

    def score(self, mon: Monitor) -> dict:
        """--eval-every: score G_ema (or G) with PeriodicEval, log the row, keep
        checkpoints/best.pt by FID."""
        was_training = self.G.training
        self.G.eval()
        try:
            row = self.periodic_eval(self.sampler())
        finally:
            self.G.train(was_training)
        row = {"step": self.step, "kimg": round(self.nimg / 1000, 3), **row}
        improved = row["fid"] < self.best_fid
        if improved:
            self.best_fid = row["fid"]
        row["best_fid"] = self.best_fid
        mon.record(row)
        acc = f" | label acc {row['label_accuracy']:.3f}" if "label_accuracy" in row else ""
        mon.print(
            f"eval  step {self.step:7d} | FID {row['fid']:.3f} | IS {row['is']:.3f}{acc} | "
            f"{self.cfg.log.eval_samples} samples in {row['eval_seconds']:.1f} s"
            + (" | new best → checkpoints/best.pt" if improved else "")
        )
        if improved:  # sampler() above re-estimated G_ema's BatchNorm statistics already
            save_checkpoint([self.run_dir / "checkpoints" / "best.pt"], self.state_dict())
        plot_evaluation(mon.records, self.run_dir / "plots")
        return row

    evaluate = score  # the name before 0.2

    # --- the schedule ----------------------------------------------------------------------
    def noise_std(self) -> float:
        t = self.cfg.train
        if not t.instance_noise or not self.noise_nimg:
            return 0.0
        return t.instance_noise * max(0.0, 1.0 - self.nimg / self.noise_nimg)

    def budget_progress(self) -> float:
        """Fraction of the budget used, by whichever budget ends first: steps/kimg/epochs (all
        known in steps) or --max-time. A --max-time budget counts this invocation only, as the
        stop rule does, so only step-type budgets give a bit-exact resumed schedule."""
        t = self.cfg.train
        done = [self.step / self.planned] if self.planned else []
        if t.max_time:
            done.append(self.elapsed / t.max_time)
        return min(1.0, max(done, default=0.0))

    def lr_factor(self) -> float:
        t = self.cfg.train
        if t.lr_decay == "none":
            return 1.0
        x = max(0.0, self.budget_progress() - t.lr_decay_start) / (1.0 - t.lr_decay_start)
        return 1.0 - x if t.lr_decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * x))

    def set_learning_rates(self) -> None:
        factor = self.lr_factor() * self.lr_scale
        for opt, lr in ((self.opt_G, self.cfg.train.lr_g), (self.opt_D, self.cfg.train.lr_d)):
            set_lr(opt, lr * factor)

    def train_step(self) -> None:
        """One step at the schedule's settings; its statistics are added into self.stats."""
        cfg = self.cfg
        if cfg.train.lr_decay != "none" or self.lr_scale != 1.0:
            self.set_learning_rates()
        B, d_steps = cfg.train.batch_size, cfg.train.d_steps
        draws = self.update.draw()
        lazy = bool(self.update.regularizers) and self.step % cfg.loss.r1_every == 0
        step, nimg = self.step + 1, self.nimg + B * d_steps  # the counts after this step
        beta = self.ema.beta(B, nimg) if self.ema else 0.0
        self.update.noise_std = self.noise_std()
        skipped = self.update(draws, lazy, step, beta)
        self.step, self.nimg = step, nimg
        if cfg.train.on_nan == "skip":
            self.skipped += skipped
            self.skipped_in_a_row = self.skipped_in_a_row + 1 if skipped else 0

    def epochs_done(self) -> int:
        return self.batcher.epoch + (self.batcher.index >= self.batcher.batches_per_epoch)

    def periods_done(self) -> int:
        """Completed periods of the per-epoch work (console line, grid, checkpoint): an epoch,
        or for a set smaller than PERIOD_IMAGES as many epochs as hold that many images, so a
        100-image set does not write a grid and a checkpoint every other step."""
        epoch_images = self.batcher.batches_per_epoch * self.cfg.train.batch_size
        return self.epochs_done() // max(1, PERIOD_IMAGES // epoch_images)

    # --- the run -----------------------------------------------------------------------
    def run(self) -> RunResult:
        cfg, log, main = self.cfg, self.cfg.log, self.ranks.main
        if main:  # under torchrun rank 0 writes everything; the others train
            for sub in ("checkpoints", "samples", "plots"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                self.run_dir / "config.json", (json.dumps(to_dict(cfg), indent=2) + "\n").encode()
            )
        mon = Monitor(
            self.run_dir, self.planned, self.step, log.progress, self.resumed_from, writer=main,
            tensorboard=to_dict(cfg) if log.tensorboard else None,
        )  # fmt: skip
        self.G.train()
        self.D.train()
        nimg_start = self.nimg
        reached = self._budget_spent() if self.resumed_from is not None else ""
        if reached in ("steps", "kimg", "epochs"):  # a resume whose budget is already spent
            mon.print(
                f"nothing to train: the {reached} budget is already reached at step {self.step} "
                f"({self.nimg / 1000:.1f} kimg); raise --{reached} to continue"
            )
            mon.close()
            final = resolve_checkpoint(self.run_dir)
            return RunResult(self.run_dir, final, self.step, self.nimg, 0.0, reached, 0)
        mon.print(report.describe(self))
        if cfg.train.on_nan == "rollback" and self.last_good is None:
            self.last_good = serialize(self.state_dict())
        start = time.monotonic()
        try:
            stopped_by, n_acc, tick = self._train_until_a_budget_ends(mon, start)
        except BaseException:
            mon.close()
            raise
        mon.bar.close()
        seconds = time.monotonic() - start
        final, grid = self._finish(mon, stopped_by, n_acc, tick)
        mon.print(
            f"stopped by {stopped_by} at step {self.step} ({self.nimg / 1000:.1f} kimg) "
            f"after {seconds:.1f} s; final grid {grid}"
        )
        mon.close()
        return RunResult(
            self.run_dir, final, self.step, self.nimg, seconds, stopped_by, self.nimg - nimg_start
        )

    def _train_until_a_budget_ends(self, mon: Monitor, start: float) -> tuple[str, int, tuple]:
        """Steps, with their log ticks, epoch lines, evaluations, grids and checkpoints, until a
        budget or a stop request ends the run. Returns why, and the log tick in progress."""
        log = self.cfg.log
        n_acc, tick_time, tick_nimg = 0, time.perf_counter(), self.nimg
        epoch_start, last_period = start, self.periods_done()
        writing = 0.0  # seconds of this epoch spent on evals, grids, plots and checkpoints
        stopped_by = ""
        while not stopped_by:
            self.train_step()
            n_acc += 1
            mon.advance()
            tick = self.step % log.log_every == 0
            if tick:
                now = time.perf_counter()
                row = report.log_row(self, n_acc, (self.nimg - tick_nimg) / (now - tick_time))
                mon.record(row)
                self.stats.zero_()  # in place: a graphed step adds into this tensor
                n_acc, tick_time, tick_nimg = 0, now, self.nimg
                for line in self.collapse.update(row):
                    mon.print(line)
                if state.rolled_back_after_nan(self, mon, row):
                    last_period, tick_nimg = self.periods_done(), self.nimg
                    continue
            epoch_ended = self.periods_done() > last_period  # an epoch, or 10k images
            self.elapsed = time.monotonic() - start
            stopped_by = self._budget_spent(tick)
            if epoch_ended:
                last_period = self.periods_done()
                now = time.monotonic()
                mon.print(report.epoch_line(self, mon.records, now - epoch_start, writing))
                epoch_start, writing = now, 0.0
            if stopped_by:
                break
            side_start = time.monotonic()
            if not self._side_work(mon, epoch_ended):
                last_period, tick_nimg = self.periods_done(), self.nimg
                continue
            writing += time.monotonic() - side_start
        return stopped_by, n_acc, (tick_time, tick_nimg)

    def _side_work(self, mon: Monitor, epoch_ended: bool) -> bool:
        """The evaluation, grid and checkpoint due after this step. False when a NaN found
        before the checkpoint rolled the run back (the checkpoint is then not written)."""
        log, main = self.cfg.log, self.ranks.main
        if main and log.eval_every and self.step % log.eval_every == 0:
            self.score(mon)
        if main and (
            (log.sample_every and self.step % log.sample_every == 0)
            or (not log.sample_every and epoch_ended)
        ):
            mon.grid(self.write_grid(), self.step)
            plot_training(mon.train_records(), self.run_dir / "plots")
        if (log.ckpt_every and self.step % log.ckpt_every == 0) or (
            not log.ckpt_every and epoch_ended
        ):
            if state.rolled_back_after_nan(self, mon):  # never save what a tick has not seen
                return False
            self.save()
        return True

    def _finish(self, mon: Monitor, stopped_by: str, n_acc: int, tick: tuple) -> tuple:
        """The last log row, grid, plots, evaluation and checkpoint; returns the checkpoint and
        the grid (None on ranks other than 0)."""
        if n_acc:
            now, (tick_time, tick_nimg) = time.perf_counter(), tick
            mon.record(
                report.log_row(self, n_acc, (self.nimg - tick_nimg) / max(now - tick_time, 1e-9))
            )
        interrupted = stopped_by == "interrupt"
        grid = None
        if self.ranks.main:
            grid = self.write_grid()
            mon.grid(grid, self.step)
            plot_training(mon.train_records(), self.run_dir / "plots")
            evaluated = any(r.get("step") == self.step and "fid" in r for r in mon.records)
            if self.cfg.log.eval_every and not interrupted and not evaluated:
                self.score(mon)
        if self.cfg.train.on_nan != "skip" and (hit := state.nonfinite_report(self)):
            raise FashionGANError(nan_message(*hit, self.run_dir / "checkpoints"))
        self.save(final=not interrupted)
        if self.ranks.main:
            write_progress_gif(self.run_dir / "samples")
        final = self.run_dir / "checkpoints" / ("latest.pt" if interrupted else "final.pt")
        return final, grid

    def _budget_spent(self, tick: bool = True) -> str:
        """Why the run stops now, or "". Steps, kimg and epochs are the same on every rank;
        under torchrun a stop request or --max-time is agreed at log ticks (any rank's request,
        rank 0's clock), so all ranks stop after the same step."""
        t = self.cfg.train
        interrupt, time_up = self.stop.requested, bool(t.max_time and self.elapsed >= t.max_time)
        if self.ranks.enabled:
            if not tick:
                interrupt = time_up = False
            else:
                local = [interrupt, time_up and self.ranks.main]
                interrupt, time_up = agree_any(local, self.ranks, self.device)
        if interrupt:
            return "interrupt"
        if t.steps and self.step >= t.steps:
            return "steps"
        if t.kimg and self.nimg >= t.kimg * 1000:
            return "kimg"
        if t.epochs and self.epochs_done() >= t.epochs:
            return "epochs"
        if time_up:
            return "max-time"
        return ""


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    resume: bool = False,
    data_env: str | None = None,
    stop: StopFlag | None = None,
    override: bool = False,
    cache_dir: Path | None = None,
    ranks: Ranks | None = None,
) -> RunResult:
    """Train (or resume) a run in `run_dir`; see RunConfig for every setting. cache_dir holds
    the evaluator's reference features for --eval-every (default ~/.cache/fashiongan). Under
    torchrun every rank calls this; `ranks` (default: from the environment) says which it is."""
    run_dir = Path(run_dir)
    ranks = ranks or setup(cfg.train.device)
    validate(cfg)  # before the folder or its lock exists
    # one process at a time in a run folder; under torchrun rank 0 holds it for all ranks
    with DirectoryLock(run_dir) if ranks.main else contextlib.nullcontext():
        if not resume:
            check_fresh_run_dir(run_dir)
        trainer = Trainer(cfg, run_dir, resume, data_env, stop, override, cache_dir, ranks)
        return trainer.run()
