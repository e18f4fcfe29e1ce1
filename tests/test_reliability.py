"""Numerical faults and resume edge cases: NaN/Inf named by step and quantity, --on-nan
stop|skip|rollback, collapse warnings, resuming from the newest valid checkpoint."""

import dataclasses
import shutil

import pytest
import torch

from fashiongan.checkpoint import load_checkpoint, numbered_checkpoints
from fashiongan.errors import FashionGANError
from fashiongan.losses import LOSSES
from fashiongan.training import health
from fashiongan.training.loop import Trainer, train
from fashiongan.training.monitor import read_metrics
from test_training import tiny, weights


def poison_g_loss(trainer: Trainer, at_steps: set[int], times: int = 1000) -> list[int]:
    """G's loss is NaN while training the given steps, at most `times` times in all; returns
    the steps poisoned, in order (a rollback replays a step)."""
    loss, hits = trainer.update.loss, []

    def g_loss(*logits, **kwargs):  # (fake) or, for a relativistic loss, (fake, real)
        if trainer.step + 1 in at_steps and len(hits) < times:
            hits.append(trainer.step + 1)
            return loss.g_loss(*logits, **kwargs) * float("nan")
        return loss.g_loss(*logits, **kwargs)

    trainer.update.loss = dataclasses.replace(loss, g_loss=g_loss)
    return hits


def steps_logged(run_dir) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss_d" in r]


def test_nan_names_the_first_bad_step_and_quantities(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=20)
    cfg.log.log_every, cfg.log.ckpt_every = 4, 2
    trainer = Trainer(cfg, tmp_path / "r")
    poison_g_loss(trainer, {5})
    with pytest.raises(FashionGANError) as e:
        trainer.run()
    message = str(e.value)
    assert message.startswith("step 5: loss_g, grad_norm_g became NaN/Inf")
    assert "--on-nan rollback" in message and "\n" not in message
    # detected before the step-6 checkpoint: the last good one (step 4) is what remains
    good = load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert good["step"] == 4 and all(torch.isfinite(v).all() for v in good["G"].values())


def test_on_nan_rollback_reloads_and_halves_the_learning_rates(idx_dir, tmp_path, capsys):
    cfg = tiny(idx_dir, steps=12, on_nan="rollback")
    cfg.log.log_every, cfg.log.ckpt_every = 2, 4
    trainer = Trainer(cfg, tmp_path / "r")
    hits = poison_g_loss(trainer, {6}, times=1)
    result = trainer.run()
    assert result.step == 12 and hits == [6]
    out = capsys.readouterr().out
    assert "step 6: loss_g, grad_norm_g became NaN/Inf; rolled back to step 4" in out
    assert f"(G {cfg.train.lr_g / 2:g}, D {cfg.train.lr_d / 2:g}); rollback 1 of 3" in out
    final = load_checkpoint(result.final_checkpoint)
    assert final["lr_scale"] == 0.5 and final["rollbacks"] == 1
    assert all(torch.isfinite(v).all() for v in final["G"].values())
    assert steps_logged(tmp_path / "r") == list(range(2, 13, 2))  # no step twice
    rows = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert rows[-1]["lr_g"] == pytest.approx(cfg.train.lr_g / 2)


def test_on_nan_rollback_gives_up_after_max_rollbacks(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=12, on_nan="rollback", max_rollbacks=2)
    cfg.log.log_every = 2
    trainer = Trainer(cfg, tmp_path / "r")
    hits = poison_g_loss(trainer, {3})  # before the first checkpoint: back to the start
    with pytest.raises(FashionGANError, match=r"^step 3: loss_g.*2 rollbacks did not help"):
        trainer.run()
    assert hits == [3, 3, 3]


def test_on_nan_skip_drops_the_bad_update_and_goes_on(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=8, on_nan="skip")
    clean = train(cfg, tmp_path / "clean")
    trainer = Trainer(cfg, tmp_path / "r")
    poison_g_loss(trainer, {5})
    result = trainer.run()
    final = load_checkpoint(result.final_checkpoint)
    assert (
        final["skipped"] == 1
        and read_metrics(tmp_path / "r" / "metrics.jsonl")[-1]["skipped_updates"] == 1
    )
    assert all(torch.isfinite(v).all() for v in final["G"].values())
    assert not torch.equal(final["G"]["fc.weight"], weights(clean.final_checkpoint)["G.fc.weight"])


def test_on_nan_skip_stops_when_every_update_is_bad(idx_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("fashiongan.training.state.SKIP_LIMIT", 3)
    cfg = tiny(idx_dir, steps=50, on_nan="skip")
    trainer = Trainer(cfg, tmp_path / "r")
    poison_g_loss(trainer, set(range(4, 51)))
    with pytest.raises(FashionGANError, match="the last 3 steps all skipped an update"):
        trainer.run()


def test_collapse_signs_are_warned_with_their_step(idx_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(health, "COLLAPSE_STEPS", 10)
    cfg = tiny(idx_dir, steps=40, lr_d=0.05, lr_g=1e-9)
    cfg.loss.loss, cfg.model.cond = "minimax", "none"  # no auxiliary loss to feed G gradients
    train(cfg, tmp_path / "r")
    log = (tmp_path / "r" / "log.txt").read_text()
    assert "D wins outright since step" in log
    assert "G's gradient has vanished since step" in log and "use --loss ns" in log


def test_collapse_watch_rules():
    watch = health.CollapseWatch(LOSSES.get("ns"))
    row = dict(d_real=0.5, d_fake=0.5, loss_d=1.3, grad_norm_g=1.0)
    assert watch.update({**row, "step": 0}) == []
    saturated = {**row, "d_real": 0.995, "d_fake": 0.001}
    assert watch.update({**saturated, "step": 100}) == []  # a stretch starts
    warned = watch.update({**saturated, "step": 100 + health.COLLAPSE_STEPS})
    assert len(warned) == 1 and warned[0].startswith("warning: step 600: D wins outright since")
    assert watch.update({**saturated, "step": 2000}) == []  # once per stretch
    assert watch.update({**row, "step": 2050})[0].startswith("step 2050: over: D wins outright")
    vanished = {**row, "grad_norm_g": 1e-4}
    assert watch.update({**vanished, "step": 3000}) == []
    assert "G's gradient has vanished" in watch.update({**vanished, "step": 3500})[0]
    hinge = health.CollapseWatch(LOSSES.get("hinge"))
    hinge.update({**row, "loss_d": 0.0, "step": 0})
    assert "hinge D loss" in hinge.update({**row, "loss_d": 0.0, "step": 500})[0]
    rp = health.CollapseWatch(LOSSES.get("rpgan"))
    rp.update({**row, "loss_d": 0.005, "step": 0})
    assert "rpgan D loss 0.0050" in rp.update({**row, "loss_d": 0.005, "step": 500})[0]
    wgan = health.CollapseWatch(LOSSES.get("wgan"))  # its D loss has no floor to watch
    wgan.update({**row, "loss_d": 0.0, "step": 0})
    assert wgan.update({**row, "loss_d": 0.0, "step": 500}) == []


def test_resume_takes_the_newest_checkpoint_that_loads(idx_dir, tmp_path, capsys):
    cfg = tiny(idx_dir, steps=12)
    cfg.log.ckpt_every, cfg.log.keep = 3, 0
    train(cfg, tmp_path / "full")
    ckpts = tmp_path / "r" / "checkpoints"
    cfg.train.steps = 9
    train(cfg, tmp_path / "r")
    # a kill between the numbered write and latest.pt: latest is one save behind
    shutil.copy(ckpts / "ckpt-0000006.pt", ckpts / "latest.pt")
    (ckpts / ".latest.pt.abc.tmp").write_bytes(b"half a checkpoint")
    cfg.train.steps = 12
    trainer = Trainer(cfg, tmp_path / "r", resume=True)
    assert trainer.step == 9 and not (ckpts / ".latest.pt.abc.tmp").exists()
    trainer.run()
    a = weights(tmp_path / "full" / "checkpoints" / "final.pt")
    b = weights(ckpts / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # both the newest numbered and latest unreadable: the next older one, with a warning
    cfg.train.steps = 15
    (ckpts / "latest.pt").write_bytes(b"garbage")
    numbered_checkpoints(ckpts)[-1].write_bytes(b"garbage")
    assert Trainer(cfg, tmp_path / "r", resume=True).step == 9
    assert "resuming from ckpt-0000009.pt instead" in capsys.readouterr().out


def test_resume_before_the_first_checkpoint_starts_over(idx_dir, tmp_path, capsys):
    cfg = tiny(idx_dir, steps=6)
    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "metrics.jsonl").write_text('{"step": 2, "loss_d": 1.0}\n{"step": 4')
    result = train(cfg, tmp_path / "r", resume=True)
    assert result.step == 6 and "holds no checkpoint yet" in capsys.readouterr().out
    assert steps_logged(tmp_path / "r") == [2, 4, 6]
    fresh = train(cfg, tmp_path / "fresh")
    a, b = weights(result.final_checkpoint), weights(fresh.final_checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_into_another_architecture_names_keys_and_shapes(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    train(cfg, tmp_path / "r")
    cfg.model.width, cfg.model.cond = 0.5, "concat"
    with pytest.raises(FashionGANError) as e:
        Trainer(cfg, tmp_path / "r", resume=True, override=True)
    message = str(e.value)
    assert "weights do not fit this run's generator" in message and "\n" not in message
    assert "shapes differ: fc.weight expected 3136×48, found 1568×16" in message
    assert (
        "missing: label_embed.weight" in message
        and "unexpected: norms.0.bn.running_mean" in message
    )


@pytest.mark.parametrize(
    "field, value, message",
    [("on_nan", "retry", "--on-nan 'retry'"), ("max_rollbacks", -1, "--max-rollbacks -1")],
)
def test_nan_settings_are_validated(idx_dir, tmp_path, field, value, message):
    cfg = tiny(idx_dir, steps=1, **{field: value})
    with pytest.raises(FashionGANError, match=message):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()
