"""One training step: draw the batch, `d_steps` D updates, `g_steps` G updates, the EMA, and the
step's statistics, added into a device tensor that the loop reads at log ticks.

The maths asks the loss for its terms (`GANLoss.d_term`, `g_term`, `penalty`, `after_d_update`)
and the registered regularisers for theirs; it never branches on a loss's or regulariser's name.
A new regulariser or augmentation plugs in here, not in the loop.

With one of each update and --reuse-fakes (the default), G runs once per step: the D update
takes its fakes detached, the G update backpropagates through the same ones after D has moved.
Everything random is drawn from one seeded generator (`gen`), before the maths, so a CUDA graph
can replay the maths (see accel.StepGraph) and a resumed run continues bit for bit.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fashiongan.config import RunConfig, aux_weight
from fashiongan.data.datasets import Batcher
from fashiongan.errors import FashionGANError
from fashiongan.losses import LOSSES, GANLoss
from fashiongan.regularizers import REGULARIZERS, Regularizer
from fashiongan.training.accel import StepGraph, autocast
from fashiongan.training.ada import ADA, ada_augment
from fashiongan.training.augment import diff_augment
from fashiongan.training.distributed import Ranks, global_mean
from fashiongan.training.ema import EMA
from fashiongan.training.health import NonFinite

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


def grad_norm(params, clip: float) -> torch.Tensor:
    """The gradients' total L2 norm, clipping them to `clip` when it is positive."""
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
    norms = torch._foreach_norm([p.grad for p in params if p.grad is not None])
    return torch.linalg.vector_norm(torch.stack(norms))


def active_regularizers(cfg: RunConfig) -> list[Regularizer]:
    """The registered regularisers with a strength in this run, in registry order."""
    registered = [REGULARIZERS.get(n) for n in REGULARIZERS.names()]
    return [r for r in registered if r.strength(cfg)]


def check_graphable(cfg: RunConfig, device: torch.device) -> None:
    """--cuda-graph records one step and replays it: refuse what a replay cannot repeat."""
    t, loss = cfg.train, LOSSES.get(cfg.loss.loss)
    drawing = [f"--loss {loss.name}"] if not loss.graphable else []
    drawing += [r.flag or f"--reg {r.name}" for r in active_regularizers(cfg) if r.draws]
    drawing += ["--instance-noise"] if t.instance_noise > 0 else []
    drawing += [f"--augment {t.augment}"] if t.augment != "none" else []
    refusals = [
        (device.type != "cuda", f"needs a CUDA device (got {device.type})"),
        (bool(drawing), f"cannot replay random draws inside the step ({', '.join(drawing)})"),
        (t.on_nan == "skip", "cannot decide per step to skip an update: use --on-nan stop"),
    ]
    for refused, why in refusals:
        if refused:
            raise FashionGANError(f"--cuda-graph {why}; or drop --cuda-graph")


@dataclass
class Draws:
    """Everything random one step needs: d_steps real batches (images, labels) and latents,
    and the G updates' latents and fake labels (none when G reuses the D update's fakes)."""

    real: list[tuple[torch.Tensor, torch.Tensor]]
    z_d: list[torch.Tensor]
    z_g: list[torch.Tensor]
    y_g: list[torch.Tensor]

    def flat(self) -> list[torch.Tensor]:
        return [t for pair in self.real for t in pair] + self.z_d + self.z_g + self.y_g


@dataclass
class Nets:
    """The modules a step updates. G and D are the bare modules (weights, EMA, penalties);
    G_step and D_step are what the forward passes call (DDP wrappers under torchrun, compiled
    with --compile); G's update calls D_frozen, the bare D under torchrun (no gradients of its
    own to reduce)."""

    G: torch.nn.Module
    D: torch.nn.Module
    G_step: torch.nn.Module
    D_step: torch.nn.Module
    D_frozen: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    ema: EMA | None


class TrainingStep:
    """Draws and runs steps; `stats` holds the sums of STAT_KEYS since the loop last zeroed it."""

    def __init__(
        self,
        cfg: RunConfig,
        nets: Nets,
        batcher: Batcher,
        n_classes: int,
        ranks: Ranks,
        device: torch.device,
        precision: str,
    ):
        t = cfg.train
        self.cfg, self.nets, self.batcher, self.n_classes = cfg, nets, batcher, n_classes
        self.ranks, self.device, self.precision = ranks, device, precision
        self.loss: GANLoss = LOSSES.get(cfg.loss.loss)
        self.regularizers = active_regularizers(cfg)
        self.reuse_fakes = t.reuse_fakes and t.d_steps == 1 and t.g_steps == 1
        self.g_draws = 0 if self.reuse_fakes else t.g_steps  # latents drawn for G's updates
        self.gen = torch.Generator(device=device).manual_seed(t.seed + 1)
        self.noise_std = 0.0  # the instance noise of the next step, set by the loop's schedule
        self.stats = torch.zeros(len(STAT_KEYS), device=device)
        self.nonfinite = NonFinite(device)
        self.ada = (
            ADA(device, t.batch_size, t.ada_target, t.ada_kimg, t.augment_p)
            if t.augment == "ada"
            else None
        )
        self.graph = None
        if t.cuda_graph:  # the step's counters live on the device, where the graph reads them
            check_graphable(cfg, device)
            self.graph = StepGraph(self._graph_maths, [nets.opt_G, nets.opt_D])
            self._step_t = torch.zeros((), dtype=torch.long, device=device)
            self._beta_t = torch.zeros((), device=device)

    # --- random draws ----------------------------------------------------------------------
    def draw(self) -> Draws:
        """The step's draws, made before its maths (so a CUDA graph can replay the maths)."""
        t, dev = self.cfg.train, self.device
        shape, mine = (t.batch_size, self.cfg.model.z_dim), self.ranks.shard(t.batch_size)
        real = [self.batcher.next() for _ in range(t.d_steps)]
        # every rank draws the global batch's latents and keeps its rows (see distributed.py)
        z_d = [torch.randn(shape, generator=self.gen, device=dev)[mine] for _ in range(t.d_steps)]
        z_g = [
            torch.randn(shape, generator=self.gen, device=dev)[mine] for _ in range(self.g_draws)
        ]
        y_g = [
            torch.randint(self.n_classes, shape[:1], generator=self.gen, device=dev)[mine]
            for _ in range(self.g_draws)
        ]
        return Draws(real, z_d, z_g, y_g)

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        """U[0, 1) draws for a term inside the maths: the global batch's, this rank's rows."""
        B = self.cfg.train.batch_size
        draws = torch.rand((B, *shape[1:]), generator=self.gen, device=self.device)
        return draws[self.ranks.shard(B)]

    def randint(self, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Integers in [0, high) for a term inside the maths: the global batch's, this rank's."""
        B = self.cfg.train.batch_size
        draws = torch.randint(high, (B, *shape[1:]), generator=self.gen, device=self.device)
        return draws[self.ranks.shard(B)]

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of images x: with instance noise, then augmented (--augment)."""
        x = self.noisy(x, self.noise_std)
        if self.cfg.train.augment == "diffaug":
            x = diff_augment(x, self.uniform, self.randint)
        elif self.ada is not None:
            x = ada_augment(x, self.ada.p, self.uniform, self.randint)
        return x

    def noisy(self, x: torch.Tensor, std: float) -> torch.Tensor:
        """x plus instance noise of standard deviation `std` (x itself at 0)."""
        if std == 0.0:
            return x
        shape = (self.cfg.train.batch_size, *x.shape[1:])  # the global batch's noise, sharded
        noise = torch.randn(shape, generator=self.gen, device=x.device)
        return x + std * noise[self.ranks.shard(shape[0])]

    def batch_mean(self, t: torch.Tensor) -> torch.Tensor:
        return global_mean(t, self.ranks)

    # --- the step --------------------------------------------------------------------------
    def __call__(self, draws: Draws, lazy_now: bool, step: int, beta: float) -> int:
        """Runs the step on `draws`; returns the updates skipped (--on-nan skip)."""
        if self.graph is not None:
            self._step_t.fill_(step)
            self._beta_t.fill_(beta)
            self.graph(draws.flat(), lazy_now)
            return 0
        return self.maths(draws, lazy_now, step, beta)

    def _graph_maths(self, inputs: list[torch.Tensor], lazy_now: bool) -> None:
        """The step on StepGraph's fixed inputs, laid out as Draws.flat() lays them."""
        t = self.cfg.train
        it = iter(inputs)
        real = [(next(it), next(it)) for _ in range(t.d_steps)]
        z_d = [next(it) for _ in range(t.d_steps)]
        z_g = [next(it) for _ in range(self.g_draws)]
        y_g = [next(it) for _ in range(self.g_draws)]
        self.maths(Draws(real, z_d, z_g, y_g), lazy_now, self._step_t, self._beta_t)

    def maths(self, draws: Draws, lazy_now: bool, step, beta) -> int:
        """d_steps D updates then g_steps G updates and the EMA, adding the step's statistics
        into self.stats. `step` and `beta` are numbers, or device tensors in a graphed step.
        Returns the updates skipped (--on-nan skip, which syncs with the device)."""
        skip_bad = self.cfg.train.on_nan == "skip"
        d = self.update_d(draws, lazy_now, skip_bad)
        g = self.update_g(draws, d["x"], d["y"], d.pop("fake_g"), skip_bad)
        if self.nets.ema:
            self.nets.ema.update(self.nets.G, beta)
        if not skip_bad:
            self.nonfinite.observe(step, [d["loss_d"], g["loss_g"], d["grad_d"], g["grad_g"]])
        self.record(d, g)
        return d["skipped"] + g["skipped"]

    def update_d(self, draws: Draws, lazy_now: bool, skip_bad: bool) -> dict:
        """The D updates, each on its real batch and its latents' fakes."""
        cfg, loss, nets, dev = self.cfg, self.loss, self.nets, self.device
        G, D, aux = nets.G_step, nets.D_step, aux_weight(cfg)
        out = {"skipped": 0, "fake_g": None, "aux_d": torch.zeros((), device=dev)}
        amp = autocast(self.precision, dev)
        nets.D.requires_grad_(True)
        for d_step, ((x, y), z) in enumerate(zip(draws.real, draws.z_d)):
            with amp:
                if self.reuse_fakes:  # G's graph is kept for the G update
                    out["fake_g"] = G(z, y)
                    fake = out["fake_g"].detach()
                else:
                    with torch.no_grad():
                        fake = G(z, y)
                real_logits, aux_loss = self.score(D, x, y, bool(aux))
                out["aux_d"] = out["aux_d"] if aux_loss is None else aux_loss
                fake_logits = D(self.view(fake), y)
            real_logits, fake_logits = real_logits.float(), fake_logits.float()
            d_loss = loss.d_term(
                real_logits, fake_logits, cfg.loss.label_smoothing, self.batch_mean
            )
            penalty = self.penalty(x, fake, y, lazy_now and d_step == 0)
            nets.opt_D.zero_grad(set_to_none=True)
            (d_loss + penalty + aux * out["aux_d"]).backward()
            grad_d = grad_norm(nets.D.parameters(), cfg.train.grad_clip)
            if skip_bad and not torch.isfinite(d_loss + grad_d):  # a host sync, --on-nan skip only
                out["skipped"] += 1
            else:
                nets.opt_D.step()
            loss.after_d_update(nets.D, cfg)
            if self.ada is not None:
                self.ada.observe(real_logits, self.batch_mean)
        out.update(x=x, y=y, loss_d=d_loss, penalty=penalty, grad_d=grad_d)
        out.update(real_logits=real_logits, fake_logits=fake_logits)
        return out

    def score(self, D, x, y, with_classes: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's logits on x with instance noise, and with the AC-GAN head the cross-entropy of its
        class prediction (None without)."""
        if not with_classes:
            return D(self.view(x), y), None
        logits, classes = D(self.view(x), y, classes=True)
        return logits, F.cross_entropy(classes.float(), y)

    def penalty(self, x, fake, y, lazy_now: bool) -> torch.Tensor:
        """The loss's own penalty and, on lazy steps, the regularisers' (N× the weight, 1/N as
        often). They run in float32: their double backward is the fragile part."""
        D = self.nets.D
        penalty = torch.zeros((), device=self.device)
        own = self.loss.penalty(D, x, fake, y, self.cfg, self.uniform)
        if own is not None:
            penalty = penalty + own
        if lazy_now:
            for reg in self.regularizers:
                term = reg.penalty(D, x.float(), fake.float(), y, self.uniform)
                penalty = penalty + reg.weight(self.cfg) * term
        return penalty

    def update_g(self, draws: Draws, x, y, fake_g, skip_bad: bool) -> dict:
        """The G updates: on the D update's fakes (reused, one update) or on fresh draws."""
        cfg, loss, nets, dev = self.cfg, self.loss, self.nets, self.device
        G, D_frozen, aux = nets.G_step, nets.D_frozen, aux_weight(cfg)
        out = {"skipped": 0, "aux_g": torch.zeros((), device=dev)}
        amp = autocast(self.precision, dev)
        nets.D.requires_grad_(False)  # G's step needs ∂D/∂x only, not D's weight gradients
        g_draws = [(None, y)] if self.reuse_fakes else list(zip(draws.z_g, draws.y_g))
        real_logits_g = None
        if loss.relativistic:  # G's fakes are scored against the last real batch, under D now
            with torch.no_grad(), amp:
                real_logits_g = D_frozen(self.view(x), y).float()
        for z, y in g_draws:
            with amp:
                if z is not None:
                    fake_g = G(z, y)
                fake_logits_g, aux_loss = self.score(D_frozen, fake_g, y, bool(aux))
                out["aux_g"] = out["aux_g"] if aux_loss is None else aux_loss
            g_loss = loss.g_term(fake_logits_g.float(), real_logits_g, self.batch_mean)
            nets.opt_G.zero_grad(set_to_none=True)
            (g_loss + aux * out["aux_g"]).backward()
            grad_g = grad_norm(nets.G.parameters(), cfg.train.grad_clip)
            if skip_bad and not torch.isfinite(g_loss + grad_g):
                out["skipped"] += 1
            else:
                nets.opt_G.step()
        nets.D.requires_grad_(True)
        out.update(loss_g=g_loss, grad_g=grad_g)
        return out

    @torch.no_grad()
    def record(self, d: dict, g: dict) -> None:
        """Adds the step's statistics into self.stats, on the device (no host sync)."""
        act = torch.sigmoid if self.loss.probabilistic else (lambda v: v)
        values = {
            "loss_d": d["loss_d"],
            "loss_g": g["loss_g"],
            "penalty": d["penalty"],
            "d_real": act(d["real_logits"]).mean(),
            "d_fake": act(d["fake_logits"]).mean(),
            "grad_norm_d": d["grad_d"],
            "grad_norm_g": g["grad_g"],
            "aux_loss_d": d["aux_d"],
            "aux_loss_g": g["aux_g"],
        }
        self.stats += torch.stack([values[k].detach().float() for k in STAT_KEYS])
