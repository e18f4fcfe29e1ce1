"""The training loop: D and G updates on in-memory batches, EMA, logging, grids, checkpoints.

One step = `d_steps` D updates (each on a new real batch) then `g_steps` G updates. With one of
each and --reuse-fakes (the default), G runs once per step: the D update takes its fakes
detached, the G update backpropagates through the same ones after D has moved. Everything
random draws from one seeded generator whose state is checkpointed with the data position, so
a resumed run on CPU continues bit for bit as if it had never stopped.
"""

import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from fashiongan._version import __version__
from fashiongan.checkpoint import (
    deserialize,
    load_checkpoint,
    load_weights,
    numbered_checkpoints,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    serialize,
)
from fashiongan.config import (
    RESUMABLE_CHANGES,
    RunConfig,
    aux_weight,
    check_numbers,
    diff,
    saved_run_config,
    to_dict,
)
from fashiongan.data.datasets import Batcher, ImageDataset, default_cache_dir, load_dataset
from fashiongan.devices import pick_device
from fashiongan.errors import FashionGANError
from fashiongan.fileio import DirectoryLock, atomic_write_bytes
from fashiongan.losses import LOSSES, GANLoss, gradient_penalty, r1_penalty
from fashiongan.models import MODELS, build_discriminator, build_generator, count_params
from fashiongan.reports.plots import plot_evaluation, plot_training
from fashiongan.sampling import (
    LoadedGenerator,
    class_seed_grid,
    recalibrate_batchnorm,
    save_gif,
    save_png,
)
from fashiongan.training.accel import (
    StepGraph,
    adam_kind,
    autocast,
    fit_adam,
    make_adam,
    portable_adam_state,
    resolve_precision,
    set_lr,
)
from fashiongan.training.distributed import (
    Ranks,
    agree_any,
    earliest,
    global_batchnorm,
    global_mean,
    mean_,
    setup,
)
from fashiongan.training.ema import EMA
from fashiongan.training.health import (
    NAN_REMEDIES,
    CollapseWatch,
    NonFinite,
    kept_checkpoint,
    nan_message,
)
from fashiongan.training.monitor import Monitor

# --on-nan skip gives up after this many steps in a row that each skipped an update
SKIP_LIMIT = 100
STAT_KEYS = (
    "loss_d",
    "loss_g",
    "d_real",
    "d_fake",
    "grad_norm_d",
    "grad_norm_g",
    "penalty",
    "aux_loss_d",
    "aux_loss_g",
)


def validate(cfg: RunConfig) -> None:
    """Reject impossible or meaningless settings before any work is done."""
    check_numbers(cfg)
    m, lo, t = cfg.model, cfg.loss, cfg.train
    MODELS.get(m.model)
    loss = LOSSES.get(lo.loss)
    checks = [
        (
            m.cond in ("none", "concat", "projection"),
            f"--cond {m.cond!r}: choose one of none, concat, projection",
        ),
        (m.d_norm in ("none", "batch"), f"--d-norm {m.d_norm!r}: choose none or batch"),
        (m.z_dim >= 1, f"--z-dim {m.z_dim}: must be at least 1"),
        (
            m.mbstd == 0 or m.mbstd >= 2,
            f"--mbstd {m.mbstd}: expected a group size of 2 or more (a group of one has no "
            f"spread), or 0 (off)",
        ),
        (m.width > 0 and round(64 * m.width) >= 1, f"--width {m.width}: must be positive"),
        (
            m.d_width == 0 or round(64 * m.d_width) >= 1,
            f"--d-width {m.d_width}: must be positive, or 0 (the same as --width)",
        ),
        (m.g_depth >= 0, f"--g-depth {m.g_depth}: expected 0 (DCGAN) or more extra layers"),
        (m.d_depth >= 0, f"--d-depth {m.d_depth}: expected 0 (DCGAN) or more extra layers"),
        (m.embed_dim >= 1, f"--embed-dim {m.embed_dim}: must be at least 1"),
        (
            0.5 < lo.label_smoothing <= 1.0,
            f"--label-smoothing {lo.label_smoothing}: expected the real-image target in (0.5, 1], "
            f"e.g. 0.9 (1.0 = off)",
        ),
        (
            lo.label_smoothing == 1.0 or loss.smoothable,
            f"--label-smoothing applies to minimax, ns and lsgan, not --loss {lo.loss}",
        ),
        (
            not (loss.gradient_penalty and m.d_norm == "batch"),
            "--loss wgan-gp with --d-norm batch: the gradient penalty needs per-sample critic "
            "outputs; use --d-norm none",
        ),
        (
            min(lo.gp_weight, lo.r1, lo.r2) >= 0,
            "--gp-weight, --r1 and --r2 must not be negative",
        ),
        (lo.r1_every >= 1, f"--r1-every {lo.r1_every}: must be at least 1"),
        (aux_weight(cfg) >= 0, f"--aux-weight {lo.aux_weight}: must not be negative"),
        (
            aux_weight(cfg) == 0 or m.cond != "none",
            "--aux-weight needs class labels to learn: use --cond concat or projection",
        ),
        (lo.weight_clip > 0, f"--weight-clip {lo.weight_clip}: must be positive"),
        (t.batch_size >= 1, f"--batch-size {t.batch_size}: must be at least 1"),
        (t.g_steps >= 1 and t.d_steps >= 1, "--g-steps and --d-steps must be at least 1"),
        (t.lr_g > 0 and t.lr_d > 0, "--lr-g and --lr-d must be positive"),
        (
            len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas),
            f"--betas {t.betas}: expected two numbers in [0, 1)",
        ),
        (
            min(t.instance_noise, t.noise_kimg, t.grad_clip, t.ema_kimg, t.ema_rampup) >= 0,
            "--instance-noise, --noise-kimg, --grad-clip, --ema-kimg and --ema-rampup must not "
            "be negative",
        ),
        (min(t.epochs, t.steps, t.kimg, t.max_time) >= 0, "budgets must not be negative"),
        (
            any((t.epochs, t.steps, t.kimg, t.max_time)),
            "no budget: give --epochs, --steps, --kimg or --max-time",
        ),
        (t.threads >= 0, f"--threads {t.threads}: must not be negative"),
        (
            t.on_nan in ("stop", "skip", "rollback"),
            f"--on-nan {t.on_nan!r}: choose stop, skip or rollback",
        ),
        (t.max_rollbacks >= 0, f"--max-rollbacks {t.max_rollbacks}: must not be negative"),
        (
            t.lr_decay in ("none", "linear", "cosine"),
            f"--lr-decay {t.lr_decay!r}: choose none, linear or cosine",
        ),
        (
            0 <= t.lr_decay_start < 1,
            f"--lr-decay-start {t.lr_decay_start}: expected a fraction of the budget in [0, 1)",
        ),
        (cfg.log.log_every >= 1, f"--log-every {cfg.log.log_every}: must be at least 1"),
        (cfg.log.grid_seeds >= 1, f"--grid-seeds {cfg.log.grid_seeds}: must be at least 1"),
        (
            min(cfg.log.sample_every, cfg.log.ckpt_every, cfg.log.keep) >= 0,
            "--sample-every, --ckpt-every and --keep must not be negative",
        ),
        (cfg.log.eval_every >= 0, f"--eval-every {cfg.log.eval_every}: must not be negative"),
        (
            cfg.log.eval_samples >= 100,
            f"--eval-samples {cfg.log.eval_samples}: must be at least 100 (IS uses 10 splits)",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise FashionGANError(message)


def grad_norm(params, clip: float) -> torch.Tensor:
    """The gradients' total L2 norm, clipping them to `clip` when it is positive."""
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
    norms = torch._foreach_norm([p.grad for p in params if p.grad is not None])
    return torch.linalg.vector_norm(torch.stack(norms))


def check_distributable(cfg: RunConfig, ranks: Ranks) -> None:
    """What a torchrun (DDP) run cannot do, said before it starts."""
    t, n = cfg.train, ranks.world
    refusals = [
        (
            t.batch_size % n != 0,
            f"--batch-size {t.batch_size} is the global batch and must split evenly over the "
            f"{n} processes: use a multiple of {n}",
        ),
        (t.cuda_graph, "--cuda-graph under torchrun is not supported yet: drop --cuda-graph"),
        (
            t.on_nan != "stop",
            f"--on-nan {t.on_nan} under torchrun is not supported yet: use --on-nan stop",
        ),
    ]
    for refused, why in refusals:
        if refused:
            raise FashionGANError(why)


def check_graphable(cfg: RunConfig, device: torch.device) -> None:
    """--cuda-graph records one step and replays it: refuse what a replay cannot repeat."""
    t = cfg.train
    refusals = [
        (device.type != "cuda", f"needs a CUDA device (got {device.type})"),
        (
            LOSSES.get(cfg.loss.loss).gradient_penalty or t.instance_noise > 0,
            "cannot replay random draws inside the step (--loss wgan-gp, --instance-noise)",
        ),
        (t.on_nan == "skip", "cannot decide per step to skip an update: use --on-nan stop"),
    ]
    for refused, why in refusals:
        if refused:
            raise FashionGANError(f"--cuda-graph {why}; or drop --cuda-graph")


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
        self.reuse_fakes = t.reuse_fakes and t.d_steps == 1 and t.g_steps == 1
        self.g_draws = 0 if self.reuse_fakes else t.g_steps  # latents drawn for G's updates
        if t.cuda_graph:
            check_graphable(cfg, self.device)
        resume_state = self._resume_state(override) if resume else None

        resolution = MODELS.get(cfg.model.model).resolution
        self.data: ImageDataset = load_dataset(
            cfg.data.data,
            cfg.data.split,
            cfg.data.subset,
            t.seed,
            resolution,
            data_env,
            cfg.data.class_names,
        )
        torch.manual_seed(t.seed)
        n_classes = self.data.n_classes
        m = cfg.model
        self.G = build_generator(
            m.model, m.z_dim, n_classes, m.cond, m.width, m.embed_dim, m.g_depth
        ).to(self.device)
        self.D = build_discriminator(
            m.model,
            n_classes,
            m.cond,
            m.d_width or m.width,
            m.d_norm,
            m.spectral_norm,
            aux_weight(cfg) > 0,
            m.mbstd,
            m.d_depth,
        ).to(self.device)
        if t.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.ema = EMA(self.G, t.ema_kimg, t.ema_rampup) if t.ema_kimg > 0 else None
        self._ema_calibrated_at: int | None = None  # the step G_ema's BN statistics are from
        if self.ranks.enabled and t.sync_bn:  # after the EMA copy, whose BatchNorm stays local
            global_batchnorm(self.G)
            global_batchnorm(self.D)
        # the step calls these; self.G/self.D stay the modules (weights, EMA, penalties).
        # Under torchrun G and D each get a DDP wrapper; G's step calls the bare D (frozen,
        # no gradients of its own to reduce), the D step a no-grad G through its wrapper
        G_train, D_train = self.G, self.D
        if self.ranks.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # a 1-channel conv's weight has two valid channels-last strides; DDP warns that its
            # bucket picked the other one, which costs a copy, not correctness
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
            ids = dict(device_ids=[self.device.index]) if self.device.type == "cuda" else {}
            G_train = DDP(self.G, broadcast_buffers=False, **ids)
            D_train = DDP(self.D, broadcast_buffers=False, **ids)
        maybe_compiled = torch.compile if t.compile else (lambda m: m)
        self.G_step, self.D_step = maybe_compiled(G_train), maybe_compiled(D_train)
        self.D_frozen = maybe_compiled(self.D) if self.ranks.enabled else self.D_step
        adam = dict(betas=t.betas, kind=self.adam_kind, graphed=t.cuda_graph, device=self.device)
        self.opt_G = make_adam(self.G.parameters(), t.lr_g, **adam)
        self.opt_D = make_adam(self.D.parameters(), t.lr_d, **adam)
        self.graph = None
        if t.cuda_graph:  # the step's counters live on the device, where the graph reads them
            self.graph = StepGraph(self._graph_maths, [self.opt_G, self.opt_D])
            self._step_t = torch.zeros((), dtype=torch.long, device=self.device)
            self._beta_t = torch.zeros((), device=self.device)
        self.loss: GANLoss = LOSSES.get(cfg.loss.loss)
        self.batcher = Batcher(
            self.data.images,
            self.data.labels,
            t.batch_size,
            t.seed,
            self.device,
            torch.channels_last if t.channels_last else torch.contiguous_format,
            self.ranks.shard(t.batch_size),
        )
        self.gen = torch.Generator(device=self.device).manual_seed(t.seed + 1)
        self.step, self.nimg = 0, 0
        self.elapsed = 0.0  # seconds trained in this invocation (what --max-time bounds)
        self.planned = planned_steps(cfg, len(self.data))
        # the instance-noise schedule is fixed at the start, so a resume with a new budget
        # keeps the schedule the run began with
        self.noise_nimg = (
            t.noise_kimg * 1000 if t.noise_kimg else _planned_nimg(cfg, len(self.data))
        )
        self.best_fid = math.inf
        self.lr_scale, self.rollbacks = 1.0, 0  # --on-nan rollback halves lr_scale
        self.skipped = 0  # --on-nan skip: updates skipped so far
        self._skipped_in_a_row = 0  # steps
        self.nonfinite = NonFinite(self.device)
        self.stats = torch.zeros(len(STAT_KEYS), device=self.device)  # sums since the last tick
        self.collapse = CollapseWatch(self.loss)
        self._last_good: bytes | None = None  # --on-nan rollback: the last checkpoint's bytes
        if resume_state is not None:
            self._load_state(resume_state)
        # a resumed run with no checkpoint yet (killed before its first) starts over at step 0
        self.resumed_from = int(resume_state["step"]) if resume_state is not None else None
        if resume and resume_state is None:
            self.resumed_from = 0
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
            )

    # --- state -------------------------------------------------------------------------
    def _resume_state(self, override: bool) -> dict | None:
        """The newest checkpoint that loads: latest.pt or a numbered one, whichever holds the
        higher step (a kill between the two writes of one save leaves them one save apart).
        None when the run has no checkpoint yet. Temp files of a write cut short are removed."""
        ckpt_dir = self.run_dir / "checkpoints"
        if self.ranks.main:  # rank 0 alone writes, so it alone tidies
            for stale in [*self.run_dir.glob(".*.tmp"), *self.run_dir.glob("*/.*.tmp")]:
                stale.unlink(missing_ok=True)
        candidates = [ckpt_dir / "latest.pt"] + numbered_checkpoints(ckpt_dir)[::-1]
        errors, best = [], None
        for path in candidates:
            if not path.is_file():
                continue
            try:
                state = load_checkpoint(path, map_location="cpu")
            except FashionGANError as e:
                errors.append(str(e))
                continue
            if best is None or int(state["step"]) > int(best[1]["step"]):
                best = (path, state)
            if path.name != "latest.pt":
                break  # numbered ones are newest first: the first that loads is the newest
        if best is None and not errors:
            if self.ranks.main:
                print(f"note: {ckpt_dir} holds no checkpoint yet: starting the run from step 0")
            return None
        if best is None:
            raise FashionGANError(
                f"--resume {self.run_dir}: no usable checkpoint in {ckpt_dir}"
                + (f" ({errors[0]})" if errors else "")
            )
        path, state = best
        if errors and self.ranks.main:
            print(f"warning: {errors[0]}; resuming from {path.name} instead")
        saved = saved_run_config(state["config"], origin=str(path))
        changes = [(k, a, b) for k, a, b in diff(saved, self.cfg) if k not in RESUMABLE_CHANGES]
        if changes and not override:
            listing = "; ".join(f"{k}: {a!r} in the run, {b!r} now" for k, a, b in changes)
            raise FashionGANError(
                f"--resume {self.run_dir}: the run was made with other settings ({listing}); "
                f"drop those flags, or add --override to continue with the new ones"
            )
        return state

    def state_dict(self) -> dict:
        return {
            "version": __version__,
            "config": to_dict(self.cfg),
            "step": self.step,
            "nimg": self.nimg,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.ema.state_dict() if self.ema else None,
            "opt_G": portable_adam_state(self.opt_G),
            "opt_D": portable_adam_state(self.opt_D),
            "batcher": self.batcher.state_dict(),
            "rng": {"train": self.gen.get_state(), "torch": torch.get_rng_state()},
            "class_names": list(self.data.class_names),
            "resolution": self.data.image_size,
            "data_checksum": self.data.checksum,
            "noise_nimg": self.noise_nimg or 0,
            "best_fid": self.best_fid if math.isfinite(self.best_fid) else None,
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "skipped": self.skipped,
        }

    def _load_state(self, state: dict) -> None:
        self._ema_calibrated_at = None
        if state.get("data_checksum") not in (None, self.data.checksum):
            raise FashionGANError(
                "--resume: the training data differ from the run's (checksum mismatch); "
                "pass the same --data/--split/--subset"
            )
        where = f"--resume {self.run_dir}"
        load_weights(self.G, state["G"], where, "this run's generator")
        load_weights(self.D, state["D"], where, "this run's discriminator")
        try:
            if self.ema and state.get("G_ema") is not None:
                self.ema.load_state_dict(state["G_ema"])
            for opt, key in ((self.opt_G, "opt_G"), (self.opt_D, "opt_D")):
                opt.load_state_dict(state[key])
                fit_adam(opt, self.adam_kind, self.cfg.train.cuda_graph)
        except (RuntimeError, ValueError, KeyError) as e:
            raise FashionGANError(
                f"{where}: optimiser or EMA state does not fit this model: "
                f"{str(e).splitlines()[0][:200]}"
            ) from None
        self.batcher.load_state_dict(state["batcher"])
        self.gen.set_state(state["rng"]["train"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step, self.nimg = int(state["step"]), int(state["nimg"])
        if self.graph is not None:
            self.graph.reset()  # the recorded step points at the replaced optimiser state
        if state.get("best_fid") is not None:
            self.best_fid = float(state["best_fid"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.rollbacks = int(state.get("rollbacks", 0))
        self.skipped = int(state.get("skipped", 0))
        if not self.cfg.train.noise_kimg and state.get("noise_nimg"):
            self.noise_nimg = state["noise_nimg"]

    def _raise_not_finite(self, what: str) -> None:
        raise FashionGANError(nan_message(self.step, [what], self.run_dir / "checkpoints"))

    def _rollback(self, mon: Monitor, bad_step: int, names: list[str]) -> None:
        """--on-nan rollback: reload the last checkpoint (or the starting state) and halve the
        learning rates; the log loses the rows after it."""
        scale, rollbacks = self.lr_scale * 0.5, self.rollbacks + 1
        self._load_state(deserialize(self._last_good))
        self.lr_scale, self.rollbacks = scale, rollbacks
        self._set_learning_rates()
        self.nonfinite.reset()
        mon.truncate(self.step)
        t = self.cfg.train
        mon.print(
            f"warning: step {bad_step}: {', '.join(names)} became NaN/Inf; rolled back to step "
            f"{self.step} with the learning rates halved (G {t.lr_g * scale:g}, D "
            f"{t.lr_d * scale:g}); rollback {rollbacks} of {t.max_rollbacks}"
        )

    def save(self, final: bool = False) -> Path:
        """Write checkpoints/ckpt-<step>.pt and latest.pt (and final.pt), pruning old numbered
        ones. Refuses weights that are not finite, so a good checkpoint is never replaced by a
        broken one. Returns the numbered checkpoint's path."""
        for net_name, net in (("G", self.G), ("D", self.D)):
            norms = torch._foreach_norm([p.detach() for p in net.parameters()])
            if not torch.isfinite(torch.stack(norms)).all():
                self._raise_not_finite(f"the weights of {net_name}")
        ckpt_dir = self.run_dir / "checkpoints"
        path = ckpt_dir / f"ckpt-{self.step:07d}.pt"
        if not self.ranks.main:  # every rank holds the same state: rank 0 writes it
            return path
        self._calibrate_ema()
        extra = [ckpt_dir / "final.pt"] if final else []
        data = save_checkpoint([path, ckpt_dir / "latest.pt", *extra], self.state_dict())
        if self.cfg.train.on_nan == "rollback":
            self._last_good = data
        prune_checkpoints(ckpt_dir, self.cfg.log.keep)
        return path

    # --- sampling ----------------------------------------------------------------------
    def _calibrate_ema(self) -> None:
        """Re-estimate G_ema's BatchNorm statistics, once per step: each EMA update copies G's
        statistics over them, and the end of an epoch samples a grid and then saves."""
        if self.ema and self._ema_calibrated_at != self.step:
            recalibrate_batchnorm(self.ema.G_ema, self.data.n_classes, self.cfg.model.z_dim)
            self._ema_calibrated_at = self.step

    def sampler(self) -> LoadedGenerator:
        self._calibrate_ema()
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
            grid = class_seed_grid(self.sampler(), list(range(self.cfg.log.grid_seeds)))
        finally:
            self.G.train(was_training)
        path = self.run_dir / "samples" / f"grid-{self.step:07d}.png"
        save_png(path, grid)
        return path

    def evaluate(self, mon: Monitor) -> dict:
        """Score G_ema (or G) with PeriodicEval, log the row, keep checkpoints/best.pt by FID."""
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

    # --- one step ------------------------------------------------------------------------
    def _noise_std(self) -> float:
        t = self.cfg.train
        if not t.instance_noise or not self.noise_nimg:
            return 0.0
        return t.instance_noise * max(0.0, 1.0 - self.nimg / self.noise_nimg)

    def _noisy(self, x: torch.Tensor, std: float) -> torch.Tensor:
        if std == 0.0:
            return x
        shape = (self.cfg.train.batch_size, *x.shape[1:])  # the global batch's noise, sharded
        noise = torch.randn(shape, generator=self.gen, device=x.device)
        return x + std * noise[self.ranks.shard(shape[0])]

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

    def _set_learning_rates(self) -> None:
        factor = self.lr_factor() * self.lr_scale
        for opt, lr in ((self.opt_G, self.cfg.train.lr_g), (self.opt_D, self.cfg.train.lr_d)):
            set_lr(opt, lr * factor)

    def train_step(self) -> None:
        """One step; its statistics are added into self.stats (STAT_KEYS order)."""
        cfg = self.cfg
        if cfg.train.lr_decay != "none" or self.lr_scale != 1.0:
            self._set_learning_rates()
        B, d_steps = cfg.train.batch_size, cfg.train.d_steps
        real, z_d, z_g, y_g = self._draw()
        lazy_now = max(cfg.loss.r1, cfg.loss.r2) > 0 and self.step % cfg.loss.r1_every == 0
        step, nimg = self.step + 1, self.nimg + B * d_steps  # the counts after this step
        beta = self.ema.beta(B, nimg) if self.ema else 0.0
        if self.graph is not None:
            self._step_t.fill_(step)
            self._beta_t.fill_(beta)
            self.graph([t for pair in real for t in pair] + z_d + z_g + y_g, lazy_now)
            skipped = 0
        else:
            skipped = self._maths(real, z_d, z_g, y_g, lazy_now, step, beta)
        self.step, self.nimg = step, nimg
        if cfg.train.on_nan == "skip":
            self.skipped += skipped
            self._skipped_in_a_row = self._skipped_in_a_row + 1 if skipped else 0

    def _draw(self) -> tuple[list, list, list, list]:
        """Everything random a step needs, drawn before its maths (so a CUDA graph can replay
        the maths): d_steps real batches and latents, g_steps latents and fake labels."""
        t, dev = self.cfg.train, self.device
        shape, mine = (t.batch_size, self.cfg.model.z_dim), self.ranks.shard(t.batch_size)
        real = [self.batcher.next() for _ in range(t.d_steps)]
        # every rank draws the global batch's latents and keeps its rows (see distributed.py)
        z_d = [torch.randn(shape, generator=self.gen, device=dev)[mine] for _ in range(t.d_steps)]
        z_g = [
            torch.randn(shape, generator=self.gen, device=dev)[mine] for _ in range(self.g_draws)
        ]
        y_g = [
            torch.randint(self.data.n_classes, shape[:1], generator=self.gen, device=dev)[mine]
            for _ in range(self.g_draws)
        ]
        return real, z_d, z_g, y_g

    def _graph_maths(self, inputs: list[torch.Tensor], lazy_now: bool) -> None:
        """The step on StepGraph's fixed inputs, laid out as train_step flattens them."""
        t = self.cfg.train
        it = iter(inputs)
        real = [(next(it), next(it)) for _ in range(t.d_steps)]
        z_d = [next(it) for _ in range(t.d_steps)]
        z_g = [next(it) for _ in range(self.g_draws)]
        y_g = [next(it) for _ in range(self.g_draws)]
        self._maths(real, z_d, z_g, y_g, lazy_now, self._step_t, self._beta_t)

    def _batch_mean(self, t: torch.Tensor) -> torch.Tensor:
        return global_mean(t, self.ranks)

    def _maths(self, real, z_d, z_g, y_g, lazy_now, step, beta) -> int:
        """d_steps D updates then g_steps G updates and the EMA, adding the step's statistics
        into self.stats. `step` and `beta` are numbers, or device tensors in a graphed step. Returns
        the updates skipped (--on-nan skip, which syncs with the device)."""
        cfg, loss = self.cfg, self.loss
        G, D, D_frozen, dev = self.G_step, self.D_step, self.D_frozen, self.device
        std = self._noise_std()
        clip = cfg.train.grad_clip
        aux = aux_weight(cfg)
        aux_d = aux_g = torch.zeros((), device=dev)
        skip_bad = cfg.train.on_nan == "skip"
        skipped = 0
        amp = autocast(self.precision, dev)
        # relativistic losses compare with batch means: the global batch's under torchrun
        relative = {"batch_mean": self._batch_mean} if loss.relativistic else {}

        self.D.requires_grad_(True)
        for d_step, ((x, y), z) in enumerate(zip(real, z_d)):
            with amp:
                if self.reuse_fakes:  # G's graph is kept for the G update below
                    fake_g = G(z, y)
                    fake = fake_g.detach()
                else:
                    with torch.no_grad():
                        fake = G(z, y)
                if aux:
                    real_logits, real_classes = D(self._noisy(x, std), y, classes=True)
                    aux_d = F.cross_entropy(real_classes.float(), y)
                else:
                    real_logits = D(self._noisy(x, std), y)
                fake_logits = D(self._noisy(fake, std), y)
            real_logits, fake_logits = real_logits.float(), fake_logits.float()
            d_loss = loss.d_loss(real_logits, fake_logits, cfg.loss.label_smoothing, **relative)
            penalty = torch.zeros((), device=dev)
            # the penalties run in float32: their double backward is the fragile part
            if loss.gradient_penalty:
                B = cfg.train.batch_size  # the global batch's ε, sharded, as for z
                eps = torch.rand(B, 1, 1, 1, generator=self.gen, device=dev)
                penalty = penalty + cfg.loss.gp_weight * gradient_penalty(
                    self.D, x, fake.float(), y, eps=eps[self.ranks.shard(B)]
                )
            if lazy_now and d_step == 0:  # lazy: N× the weight, 1/N as often
                # R1 on the reals, R2 on the fakes: one penalty on two batches
                for gamma, images in ((cfg.loss.r1, x), (cfg.loss.r2, fake)):
                    if gamma > 0:
                        weight = 0.5 * gamma * cfg.loss.r1_every
                        penalty = penalty + weight * r1_penalty(self.D, images.float(), y)
            self.opt_D.zero_grad(set_to_none=True)
            (d_loss + penalty + aux * aux_d).backward()
            grad_d = grad_norm(self.D.parameters(), clip)
            if skip_bad and not torch.isfinite(d_loss + grad_d):  # a host sync, --on-nan skip only
                skipped += 1
            else:
                self.opt_D.step()
            if loss.weight_clip is not None:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-cfg.loss.weight_clip, cfg.loss.weight_clip)

        self.D.requires_grad_(False)  # G's step needs ∂D/∂x only, not D's weight gradients
        # reusing: one update on the D update's fakes (still attached to G's graph) and labels
        g_draws = [(None, y)] if self.reuse_fakes else list(zip(z_g, y_g))
        real_logits_g = None
        if loss.relativistic:  # G's fakes are scored against the last real batch, under D now
            with torch.no_grad(), amp:
                real_logits_g = D_frozen(self._noisy(x, std), y).float()
        for z, y in g_draws:
            with amp:
                if z is not None:
                    fake_g = G(z, y)
                if aux:
                    fake_logits_g, fake_classes = D_frozen(
                        self._noisy(fake_g, std), y, classes=True
                    )
                    aux_g = F.cross_entropy(fake_classes.float(), y)
                else:
                    fake_logits_g = D_frozen(self._noisy(fake_g, std), y)
            if loss.relativistic:
                g_loss = loss.g_loss(fake_logits_g.float(), real_logits_g, **relative)
            else:
                g_loss = loss.g_loss(fake_logits_g.float())
            self.opt_G.zero_grad(set_to_none=True)
            (g_loss + aux * aux_g).backward()
            grad_g = grad_norm(self.G.parameters(), clip)
            if skip_bad and not torch.isfinite(g_loss + grad_g):
                skipped += 1
            else:
                self.opt_G.step()
        self.D.requires_grad_(True)
        if self.ema:
            self.ema.update(self.G, beta)
        if not skip_bad:
            self.nonfinite.observe(step, [d_loss, g_loss, grad_d, grad_g])

        with torch.no_grad():
            act = torch.sigmoid if loss.probabilistic else (lambda v: v)
            values = {
                "loss_d": d_loss,
                "loss_g": g_loss,
                "penalty": penalty,
                "d_real": act(real_logits).mean(),
                "d_fake": act(fake_logits).mean(),
                "grad_norm_d": grad_d,
                "grad_norm_g": grad_g,
                "aux_loss_d": aux_d,
                "aux_loss_g": aux_g,
            }
            self.stats += torch.stack([values[k].detach().float() for k in STAT_KEYS])
        return skipped

    # --- the run -----------------------------------------------------------------------
    def epochs_done(self) -> int:
        return self.batcher.epoch + (self.batcher.index >= self.batcher.batches_per_epoch)

    def run(self) -> RunResult:
        cfg, log, main = self.cfg, self.cfg.log, self.ranks.main
        if main:  # under torchrun rank 0 writes everything; the others train
            for sub in ("checkpoints", "samples", "plots"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                self.run_dir / "config.json", (json.dumps(to_dict(cfg), indent=2) + "\n").encode()
            )
        mon = Monitor(
            self.run_dir, self.planned, self.step, log.progress, self.resumed_from, writer=main
        )
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
        mon.print(self.describe())
        n_acc, tick_time, tick_nimg = 0, time.perf_counter(), self.nimg
        if cfg.train.on_nan == "rollback" and self._last_good is None:
            self._last_good = serialize(self.state_dict())
        start = time.monotonic()
        epoch_start, last_epoch = start, self.epochs_done()
        writing = 0.0  # seconds of this epoch spent on evals, grids, plots and checkpoints
        stopped_by = ""
        try:
            while not stopped_by:
                self.train_step()
                n_acc += 1
                mon.advance()
                tick = self.step % log.log_every == 0
                if tick:
                    now = time.perf_counter()
                    row = self._log_row(n_acc, (self.nimg - tick_nimg) / (now - tick_time))
                    mon.record(row)
                    self.stats.zero_()  # in place: a graphed step adds into this tensor
                    n_acc, tick_time, tick_nimg = 0, now, self.nimg
                    for line in self.collapse.update(row):
                        mon.print(line)
                    if self._rolled_back_after_nan(mon, row):
                        last_epoch, tick_nimg = self.epochs_done(), self.nimg
                        continue
                epoch_ended = self.epochs_done() > last_epoch
                self.elapsed = time.monotonic() - start
                stopped_by = self._budget_spent(tick)
                if epoch_ended:
                    last_epoch = self.epochs_done()
                    now = time.monotonic()
                    mon.print(self._epoch_line(mon.records, now - epoch_start, writing))
                    epoch_start, writing = now, 0.0
                if stopped_by:
                    break
                side_start = time.monotonic()
                if main and log.eval_every and self.step % log.eval_every == 0:
                    self.evaluate(mon)
                if main and (
                    (log.sample_every and self.step % log.sample_every == 0)
                    or (not log.sample_every and epoch_ended)
                ):
                    self.write_grid()
                    plot_training(mon.train_records(), self.run_dir / "plots")
                if (log.ckpt_every and self.step % log.ckpt_every == 0) or (
                    not log.ckpt_every and epoch_ended
                ):
                    if self._rolled_back_after_nan(mon):  # never save what a tick has not seen
                        last_epoch, tick_nimg = self.epochs_done(), self.nimg
                        continue
                    self.save()
                writing += time.monotonic() - side_start
        except BaseException:
            mon.close()
            raise
        mon.bar.close()
        seconds = time.monotonic() - start
        if n_acc:
            now = time.perf_counter()
            mon.record(self._log_row(n_acc, (self.nimg - tick_nimg) / max(now - tick_time, 1e-9)))
        interrupted = stopped_by == "interrupt"
        grid = None
        if main:
            grid = self.write_grid()
            plot_training(mon.train_records(), self.run_dir / "plots")
            evaluated = any(r.get("step") == self.step and "fid" in r for r in mon.records)
            if log.eval_every and not interrupted and not evaluated:
                self.evaluate(mon)
        if self.cfg.train.on_nan != "skip" and (hit := self._nonfinite_report()):
            raise FashionGANError(nan_message(*hit, self.run_dir / "checkpoints"))
        self.save(final=not interrupted)
        final = self.run_dir / "checkpoints" / ("latest.pt" if interrupted else "final.pt")
        if main:
            write_progress_gif(self.run_dir / "samples")
        mon.print(
            f"stopped by {stopped_by} at step {self.step} ({self.nimg / 1000:.1f} kimg) "
            f"after {seconds:.1f} s; final grid {grid}"
        )
        mon.close()
        return RunResult(
            self.run_dir, final, self.step, self.nimg, seconds, stopped_by, self.nimg - nimg_start
        )

    def _rolled_back_after_nan(self, mon: Monitor, row: dict | None = None) -> bool:
        """At a log tick: if a loss or gradient turned NaN/Inf since the last tick, roll back
        (--on-nan rollback, returns True) or stop with the step and the quantities named."""
        t, ckpt_dir = self.cfg.train, self.run_dir / "checkpoints"
        if t.on_nan == "skip":
            if self._skipped_in_a_row >= SKIP_LIMIT:
                raise FashionGANError(
                    f"step {self.step}: the last {self._skipped_in_a_row} steps all skipped an "
                    f"update for a NaN/Inf loss or gradient; {kept_checkpoint(ckpt_dir)}; "
                    f"{NAN_REMEDIES}"
                )
            return False
        hit = self._nonfinite_report()
        if hit is None:
            bad = [k for k in STAT_KEYS if row is not None and not math.isfinite(row[k])]
            if not bad:
                return False
            hit = (self.step, bad)
        if t.on_nan == "rollback" and self.rollbacks < t.max_rollbacks:
            self._rollback(mon, *hit)
            return True
        tried = f" ({self.rollbacks} rollbacks did not help)" if t.on_nan == "rollback" else ""
        raise FashionGANError(nan_message(*hit, ckpt_dir) + tried)

    def _nonfinite_report(self) -> tuple[int, list[str]] | None:
        """NonFinite.report() over all ranks (a collective under torchrun: every rank calls it
        at the same steps, so they stop together)."""
        earliest(self.nonfinite.first, self.ranks)
        return self.nonfinite.report()

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

    def _log_row(self, n: int, img_per_s: float) -> dict:
        row = {
            "step": self.step,
            "epoch": round(
                self.nimg / (self.batcher.batches_per_epoch * self.cfg.train.batch_size), 4
            ),
            "kimg": round(self.nimg / 1000, 3),
        }
        mean_(self.stats, self.ranks)  # under torchrun: the average over ranks
        row.update({k: v / n for k, v in zip(STAT_KEYS, self.stats.tolist())})  # a host sync
        row["lr_g"] = float(self.opt_G.param_groups[0]["lr"])
        row["lr_d"] = float(self.opt_D.param_groups[0]["lr"])
        row["instance_noise"] = self._noise_std()
        if self.cfg.train.on_nan == "skip":
            row["skipped_updates"] = self.skipped
        row["img_per_s"] = round(img_per_s, 1)
        return row

    def _epoch_line(self, records: list[dict], seconds: float, writing: float) -> str:
        r = next((r for r in reversed(records) if "loss_d" in r), None)
        head = f"epoch {self.epochs_done():3d} | step {self.step:7d} | {self.nimg / 1000:8.1f} kimg"
        took = f"{seconds:.1f} s" + (f" ({writing:.1f} s of it writing)" if writing >= 0.05 else "")
        if r is None:
            return f"{head} | {took}"
        return (
            f"{head} | D {r['loss_d']:.3f} G {r['loss_g']:.3f} | D(x) {r['d_real']:.3f} "
            f"D(G(z)) {r['d_fake']:.3f} | |∇D| {r['grad_norm_d']:.2f} |∇G| {r['grad_norm_g']:.2f}"
            f" | {r['img_per_s']:.0f} img/s | {took}"
        )

    def describe(self) -> str:
        c = self.cfg
        return (
            f"fashiongan {__version__} | {c.model.model} "
            + (
                f"(3×3 layers per resolution: G +{c.model.g_depth}, D +{c.model.d_depth}) "
                if c.model.g_depth or c.model.d_depth
                else ""
            )
            + f"cond={c.model.cond} loss={c.loss.loss} "
            + (f"+ aux classifier ×{aux_weight(c):g} " if aux_weight(c) else "")
            + "".join(f"+ {n} γ {g:g} " for n, g in (("R1", c.loss.r1), ("R2", c.loss.r2)) if g)
            + (f"every {c.loss.r1_every} steps " if max(c.loss.r1, c.loss.r2) > 0 else "")
            + f"| lr G {c.train.lr_g:g} D {c.train.lr_d:g} β {tuple(c.train.betas)} "
            f"batch {c.train.batch_size} "
            f"| G {count_params(self.G) / 1e6:.2f}M D {count_params(self.D) / 1e6:.2f}M params "
            f"| data {self.data.source} ({len(self.data)} images, {self.data.image_size}px) "
            f"| {self.device}"
            + (f" × {self.ranks.world} ranks (torchrun)" if self.ranks.enabled else "")
            + f" | {self.run_dir}"
            + (f" | resumed at step {self.step}" if self.resumed_from is not None else "")
        )


def write_progress_gif(samples_dir: Path) -> Path | None:
    """samples/progress.gif: the fixed-noise grids in step order, one frame each."""
    grids = sorted(samples_dir.glob("grid-*.png"))
    if not grids:
        return None
    out = samples_dir / "progress.gif"
    save_gif(out, [Image.open(p).convert("L") for p in grids], ms_per_frame=400)
    return out


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


# what a run writes into its directory: a fresh run refuses a folder holding any of them
RUN_ARTEFACTS = ("config.json", "log.txt", "metrics.jsonl", "checkpoints", "samples", "plots")


def check_fresh_run_dir(run_dir: Path) -> None:
    """A new run goes into a new or empty-of-runs folder: never appended to the log of a run
    killed before its first checkpoint, nor written over another run's checkpoints. (A file
    given as the folder is refused by DirectoryLock, which runs first.)"""
    found = [n for n in RUN_ARTEFACTS if (run_dir / n).exists()]
    if not found:
        return
    ckpt = run_dir / "checkpoints"
    if ckpt.is_dir() and any(ckpt.glob("*.pt")):
        raise FashionGANError(
            f"--out {run_dir} already holds a run; continue it with --resume {run_dir} or "
            f"choose another --out"
        )
    raise FashionGANError(
        f"--out {run_dir} holds files of an earlier run ({', '.join(found)}) but no checkpoint "
        f"to resume; delete them or choose another --out"
    )
