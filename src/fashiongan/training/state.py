"""A run's state on disk: what a checkpoint holds, finding the one to resume from, restoring it,
saving (never a broken state over a good one), the --on-nan policy (stop, skip, rollback), and
the run folder's rules.

The functions take the Trainer; they read and write its parts (models, optimisers, batcher,
generators, counters) and nothing else of it.
"""

import math
from pathlib import Path

import torch

from fashiongan._version import __version__
from fashiongan.checkpoint import (
    deserialize,
    load_checkpoint,
    load_weights,
    numbered_checkpoints,
    prune_checkpoints,
    save_checkpoint,
)
from fashiongan.config import RESUMABLE_CHANGES, RunConfig, diff, saved_run_config, to_dict
from fashiongan.errors import FashionGANError
from fashiongan.training.accel import fit_adam, portable_adam_state
from fashiongan.training.distributed import earliest
from fashiongan.training.health import NAN_REMEDIES, kept_checkpoint, nan_message
from fashiongan.training.step import STAT_KEYS

# --on-nan skip gives up after this many steps in a row that each skipped an update
SKIP_LIMIT = 100

# what a run writes into its directory: a fresh run refuses a folder holding any of them
RUN_ARTEFACTS = (
    "config.json",
    "log.txt",
    "metrics.jsonl",
    "checkpoints",
    "samples",
    "plots",
    "tensorboard",
)


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


def _newest_loadable(ckpt_dir: Path) -> tuple[Path | None, dict | None, list[str]]:
    """latest.pt or a numbered checkpoint, whichever holds the higher step (a kill between the
    two writes of one save leaves them one save apart); the errors of those that did not load."""
    candidates = [ckpt_dir / "latest.pt"] + numbered_checkpoints(ckpt_dir)[::-1]
    errors, best = [], (None, None)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            state = load_checkpoint(path, map_location="cpu")
        except FashionGANError as e:
            errors.append(str(e))
            continue
        if best[1] is None or int(state["step"]) > int(best[1]["step"]):
            best = (path, state)
        if path.name != "latest.pt":
            break  # numbered ones are newest first: the first that loads is the newest
    return *best, errors


def resume_state(run_dir: Path, cfg: RunConfig, override: bool, main: bool) -> dict | None:
    """The newest checkpoint of `run_dir` that loads, checked against `cfg` (settings that may
    not change without --override). None when the run has no checkpoint yet. Temp files of a
    write cut short are removed (by rank 0, which alone writes)."""
    ckpt_dir = run_dir / "checkpoints"
    if main:
        for stale in [*run_dir.glob(".*.tmp"), *run_dir.glob("*/.*.tmp")]:
            stale.unlink(missing_ok=True)
    path, state, errors = _newest_loadable(ckpt_dir)
    if state is None and not errors:
        if main:
            print(f"note: {ckpt_dir} holds no checkpoint yet: starting the run from step 0")
        return None
    if state is None:
        raise FashionGANError(
            f"--resume {run_dir}: no usable checkpoint in {ckpt_dir}"
            + (f" ({errors[0]})" if errors else "")
        )
    if errors and main:
        print(f"warning: {errors[0]}; resuming from {path.name} instead")
    saved = saved_run_config(state["config"], origin=str(path))
    changes = [(k, a, b) for k, a, b in diff(saved, cfg) if k not in RESUMABLE_CHANGES]
    if changes and not override:
        listing = "; ".join(f"{k}: {a!r} in the run, {b!r} now" for k, a, b in changes)
        raise FashionGANError(
            f"--resume {run_dir}: the run was made with other settings ({listing}); "
            f"drop those flags, or add --override to continue with the new ones"
        )
    return state


def state_of(tr) -> dict:
    """Everything a run needs to continue bit for bit, as plain tensors and numbers."""
    return {
        "version": __version__,
        "config": to_dict(tr.cfg),
        "step": tr.step,
        "nimg": tr.nimg,
        "G": tr.G.state_dict(),
        "D": tr.D.state_dict(),
        "G_ema": tr.ema.state_dict() if tr.ema else None,
        "opt_G": portable_adam_state(tr.opt_G),
        "opt_D": portable_adam_state(tr.opt_D),
        "batcher": tr.batcher.state_dict(),
        "rng": {"train": tr.update.gen.get_state(), "torch": torch.get_rng_state()},
        "class_names": list(tr.data.class_names),
        "resolution": tr.data.image_size,
        **({"channels": tr.data.channels} if tr.data.channels != 1 else {}),  # absent: grayscale
        **({"ada": tr.update.ada.state_dict()} if tr.update.ada is not None else {}),
        "data_checksum": tr.data.checksum,
        "noise_nimg": tr.noise_nimg or 0,
        "best_fid": tr.best_fid if math.isfinite(tr.best_fid) else None,
        "lr_scale": tr.lr_scale,
        "rollbacks": tr.rollbacks,
        "skipped": tr.skipped,
    }


def restore(tr, state: dict) -> None:
    """Load `state` (a checkpoint of this run) into the trainer, in place."""
    tr.ema_calibrated_at = None
    if state["data_checksum"] not in (None, tr.data.checksum):
        raise FashionGANError(
            "--resume: the training data differ from the run's (checksum mismatch); "
            "pass the same --data/--split/--subset"
        )
    where = f"--resume {tr.run_dir}"
    load_weights(tr.G, state["G"], where, "this run's generator")
    load_weights(tr.D, state["D"], where, "this run's discriminator")
    try:
        if tr.ema and state["G_ema"] is not None:
            tr.ema.load_state_dict(state["G_ema"])
        for opt, key in ((tr.opt_G, "opt_G"), (tr.opt_D, "opt_D")):
            opt.load_state_dict(state[key])
            fit_adam(opt, tr.adam_kind, tr.cfg.train.cuda_graph)
    except (RuntimeError, ValueError, KeyError) as e:
        raise FashionGANError(
            f"{where}: optimiser or EMA state does not fit this model: "
            f"{str(e).splitlines()[0][:200]}"
        ) from None
    tr.batcher.load_state_dict(state["batcher"])
    if tr.update.ada is not None and "ada" in state:
        tr.update.ada.load_state_dict(state["ada"])
    tr.update.gen.set_state(state["rng"]["train"])
    torch.set_rng_state(state["rng"]["torch"])
    tr.step, tr.nimg = int(state["step"]), int(state["nimg"])
    if tr.update.graph is not None:
        tr.update.graph.reset()  # the recorded step points at the replaced optimiser state
    if state["best_fid"] is not None:
        tr.best_fid = float(state["best_fid"])
    tr.lr_scale = float(state["lr_scale"])
    tr.rollbacks = int(state["rollbacks"])
    tr.skipped = int(state["skipped"])
    if not tr.cfg.train.noise_kimg and state["noise_nimg"]:
        tr.noise_nimg = state["noise_nimg"]


def save(tr, final: bool = False) -> Path:
    """Write checkpoints/ckpt-<step>.pt and latest.pt (and final.pt), pruning old numbered
    ones. Refuses weights that are not finite, so a good checkpoint is never replaced by a
    broken one. Returns the numbered checkpoint's path."""
    for net_name, net in (("G", tr.G), ("D", tr.D)):
        norms = torch._foreach_norm([p.detach() for p in net.parameters()])
        if not torch.isfinite(torch.stack(norms)).all():
            raise FashionGANError(
                nan_message(tr.step, [f"the weights of {net_name}"], tr.run_dir / "checkpoints")
            )
    ckpt_dir = tr.run_dir / "checkpoints"
    path = ckpt_dir / f"ckpt-{tr.step:07d}.pt"
    if not tr.ranks.main:  # every rank holds the same state: rank 0 writes it
        return path
    tr.calibrate_ema()
    extra = [ckpt_dir / "final.pt"] if final else []
    data = save_checkpoint([path, ckpt_dir / "latest.pt", *extra], state_of(tr))
    if tr.cfg.train.on_nan == "rollback":
        tr.last_good = data
    prune_checkpoints(ckpt_dir, tr.cfg.log.keep)
    return path


def rollback(tr, mon, bad_step: int, names: list[str]) -> None:
    """--on-nan rollback: reload the last checkpoint (or the starting state) and halve the
    learning rates; the log loses the rows after it."""
    scale, rollbacks = tr.lr_scale * 0.5, tr.rollbacks + 1
    restore(tr, deserialize(tr.last_good))
    tr.lr_scale, tr.rollbacks = scale, rollbacks
    tr.set_learning_rates()
    tr.update.nonfinite.reset()
    mon.truncate(tr.step)
    t = tr.cfg.train
    mon.print(
        f"warning: step {bad_step}: {', '.join(names)} became NaN/Inf; rolled back to step "
        f"{tr.step} with the learning rates halved (G {t.lr_g * scale:g}, D "
        f"{t.lr_d * scale:g}); rollback {rollbacks} of {t.max_rollbacks}"
    )


def rolled_back_after_nan(tr, mon, row: dict | None = None) -> bool:
    """At a log tick: if a loss or gradient turned NaN/Inf since the last tick, roll back
    (--on-nan rollback, returns True) or stop with the step and the quantities named."""
    t, ckpt_dir = tr.cfg.train, tr.run_dir / "checkpoints"
    if t.on_nan == "skip":
        if tr.skipped_in_a_row >= SKIP_LIMIT:
            raise FashionGANError(
                f"step {tr.step}: the last {tr.skipped_in_a_row} steps all skipped an "
                f"update for a NaN/Inf loss or gradient; {kept_checkpoint(ckpt_dir)}; "
                f"{NAN_REMEDIES}"
            )
        return False
    hit = nonfinite_report(tr)
    if hit is None:
        bad = [k for k in STAT_KEYS if row is not None and not math.isfinite(row[k])]
        if not bad:
            return False
        hit = (tr.step, bad)
    if t.on_nan == "rollback" and tr.rollbacks < t.max_rollbacks:
        rollback(tr, mon, *hit)
        return True
    tried = f" ({tr.rollbacks} rollbacks did not help)" if t.on_nan == "rollback" else ""
    raise FashionGANError(nan_message(*hit, ckpt_dir) + tried)


def nonfinite_report(tr) -> tuple[int, list[str]] | None:
    """NonFinite.report() over all ranks (a collective under torchrun: every rank calls it
    at the same steps, so they stop together)."""
    earliest(tr.update.nonfinite.first, tr.ranks)
    return tr.update.nonfinite.report()
