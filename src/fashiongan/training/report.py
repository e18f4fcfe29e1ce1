"""What the loop says: the log rows of metrics.jsonl, the epoch lines and the run's opening line.
They read the Trainer's counters and statistics and change nothing but the statistics' sums
(averaged over ranks under torchrun)."""

from fashiongan._version import __version__
from fashiongan.config import aux_weight
from fashiongan.models import count_params
from fashiongan.training.distributed import all_reduce_mean_
from fashiongan.training.step import STAT_KEYS


def log_row(tr, n: int, img_per_s: float) -> dict:
    """The metrics.jsonl row of a log tick: the means of the step statistics since the last."""
    row = {
        "step": tr.step,
        "epoch": round(tr.nimg / (tr.batcher.batches_per_epoch * tr.cfg.train.batch_size), 4),
        "kimg": round(tr.nimg / 1000, 3),
    }
    all_reduce_mean_(tr.stats, tr.ranks)  # under torchrun: the average over ranks
    row.update({k: v / n for k, v in zip(STAT_KEYS, tr.stats.tolist())})  # a host sync
    row["lr_g"] = float(tr.opt_G.param_groups[0]["lr"])
    row["lr_d"] = float(tr.opt_D.param_groups[0]["lr"])
    row["instance_noise"] = tr.noise_std()
    if tr.update.ada is not None:
        row["augment_p"] = round(tr.update.ada.p.item(), 6)
    if tr.cfg.train.on_nan == "skip":
        row["skipped_updates"] = tr.skipped
    row["img_per_s"] = round(img_per_s, 1)
    return row


def epoch_line(tr, records: list[dict], seconds: float, writing: float) -> str:
    """The console line at the end of an epoch, from the newest training row."""
    r = next((r for r in reversed(records) if "loss_d" in r), None)
    head = f"epoch {tr.epochs_done():3d} | step {tr.step:7d} | {tr.nimg / 1000:8.1f} kimg"
    took = f"{seconds:.1f} s" + (f" ({writing:.1f} s of it writing)" if writing >= 0.05 else "")
    if r is None:
        return f"{head} | {took}"
    return (
        f"{head} | D {r['loss_d']:.3f} G {r['loss_g']:.3f} | D(x) {r['d_real']:.3f} "
        f"D(G(z)) {r['d_fake']:.3f} | |∇D| {r['grad_norm_d']:.2f} |∇G| {r['grad_norm_g']:.2f}"
        f" | {r['img_per_s']:.0f} img/s | {took}"
    )


def describe(tr) -> str:
    """The console line a run starts with: model, loss, regularisers, sizes, data, device."""
    c = tr.cfg
    return (
        f"fashiongan {__version__} | {c.model.model} "
        + (
            f"(3×3 layers per resolution: G +{c.model.g_depth}, D +{c.model.d_depth}) "
            if c.model.g_depth or c.model.d_depth
            else ""
        )
        + f"cond={c.model.cond} loss={c.loss.loss} "
        + (f"+ aux classifier ×{aux_weight(c):g} " if aux_weight(c) else "")
        + "".join(f"+ {r.name.upper()} γ {r.strength(c):g} " for r in tr.update.regularizers)
        + (f"every {c.loss.r1_every} steps " if tr.update.regularizers else "")
        + ("+ DiffAugment " if c.train.augment == "diffaug" else "")
        + (f"+ ADA ({_ada(c)}) " if c.train.augment == "ada" else "")
        + f"| lr G {c.train.lr_g:g} D {c.train.lr_d:g} β {tuple(c.train.betas)} "
        f"batch {c.train.batch_size} "
        f"| G {count_params(tr.G) / 1e6:.2f}M D {count_params(tr.D) / 1e6:.2f}M params "
        f"| data {tr.data.source} ({len(tr.data)} images, {tr.data.image_size}px"
        + (", colour) " if tr.data.channels == 3 else ") ")
        + f"| {tr.device}"
        + (f" × {tr.ranks.world} ranks (torchrun)" if tr.ranks.enabled else "")
        + f" | {tr.run_dir}"
        + (f" | resumed at step {tr.step}" if tr.resumed_from is not None else "")
    )


def _ada(c) -> str:
    if c.train.augment_p is not None:
        return f"p fixed at {c.train.augment_p:g}"
    return f"target {c.train.ada_target:g}, p 0 → 1 in {c.train.ada_kimg:g} kimg at most"
