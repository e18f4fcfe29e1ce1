"""The training loop: determinism, exact resume, every recipe combination, budgets, stopping."""

import copy
import json
import os
import pty
import sys

import pytest
import torch

from fashiongan import sampling
from fashiongan.checkpoint import load_checkpoint
from fashiongan.config import (
    RunConfig,
    aux_weight,
    from_dict,
    load_preset,
    preset_names,
    saved_run_config,
)
from fashiongan.errors import FashionGANError
from fashiongan.losses import LOSSES, r1_penalty
from fashiongan.models import CONDITIONINGS, MODELS, build_discriminator
from fashiongan.training import loop
from fashiongan.training.ema import EMA
from fashiongan.training.loop import STAT_KEYS, StopFlag, Trainer, train
from fashiongan.training.monitor import Monitor, read_metrics
from fashiongan.training.step import Draws
from fashiongan.validation import validate


def tiny(idx_dir, **train) -> RunConfig:
    cfg = RunConfig()
    cfg.data.data = str(idx_dir)
    cfg.model.width = 0.25
    cfg.model.z_dim = 16
    cfg.train.batch_size = 16
    cfg.train.epochs = 0
    cfg.train.ema_kimg = 0.1
    cfg.log.log_every = 2
    cfg.log.progress = False
    cfg.log.grid_seeds = 3
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def weights(path):
    state = load_checkpoint(path)
    return {f"{part}.{k}": v for part in ("G", "D", "G_ema") for k, v in state[part].items()}


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_weights(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=6)
    a = train(cfg, tmp_path / "a")
    b = train(cfg, tmp_path / "b")
    assert_same(weights(a.final_checkpoint), weights(b.final_checkpoint))
    cfg.train.seed = 1
    c = train(cfg, tmp_path / "c")
    assert not torch.equal(
        weights(a.final_checkpoint)["G.fc.weight"], weights(c.final_checkpoint)["G.fc.weight"]
    )


def stop_at(trainer: Trainer, step: int) -> Trainer:
    """Make `trainer` behave as if Ctrl-C arrived during step `step`."""
    original = trainer.train_step

    def step_then_stop():
        original()
        if trainer.step == step:
            trainer.stop.requested = True

    trainer.train_step = step_then_stop
    return trainer


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_resume_reproduces_uninterrupted_run(idx_dir, tmp_path, loss):
    # 200 images / batch 16 = 12 batches per epoch: the cut at step 7 is mid-epoch
    cfg = tiny(idx_dir, steps=16)
    cfg.loss.loss = loss
    cfg.train.instance_noise = 0.1 if loss == "ns" else 0.0
    cfg.model.spectral_norm = loss == "wgan-gp"
    full = train(cfg, tmp_path / "full")
    cut = stop_at(Trainer(cfg, tmp_path / "cut"), 7).run()
    assert cut.stopped_by == "interrupt" and cut.step == 7
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert resumed.step == full.step == 16
    assert_same(weights(full.final_checkpoint), weights(resumed.final_checkpoint))
    a, b = load_checkpoint(full.final_checkpoint), load_checkpoint(resumed.final_checkpoint)
    assert torch.equal(a["rng"]["train"], b["rng"]["train"])
    assert a["opt_G"]["state"][0]["exp_avg"].equal(b["opt_G"]["state"][0]["exp_avg"])
    # the interrupted run adds a row for its partial window (step 7); otherwise the same rows
    cut_rows = {r["step"]: r for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")}
    full_rows = {r["step"]: r for r in read_metrics(tmp_path / "full" / "metrics.jsonl")}
    steps = [r["step"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and set(steps) == set(full_rows) | {7}
    for step in (2, 4, 6, 10, 16):
        assert cut_rows[step]["loss_d"] == full_rows[step]["loss_d"]


def test_resume_keeps_the_noise_schedule(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=4)
    cfg.train.instance_noise = 0.2
    train(cfg, tmp_path / "r")
    cfg.train.steps = 40
    trainer = Trainer(cfg, tmp_path / "r", resume=True)
    assert trainer.noise_nimg == 4 * 16 and trainer.noise_std() == 0.0


def test_resume_refuses_changed_settings(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    train(cfg, tmp_path / "r")
    cfg.loss.loss = "hinge"
    cfg.train.steps = 4
    with pytest.raises(
        FashionGANError, match="loss.loss: 'ragan' in the run, 'hinge' now.*--override"
    ):
        train(cfg, tmp_path / "r", resume=True)
    result = train(cfg, tmp_path / "r", resume=True, override=True)
    assert result.step == 4


def test_resume_falls_back_from_corrupt_latest(idx_dir, tmp_path, capsys):
    cfg = tiny(idx_dir, steps=4)
    cfg.log.ckpt_every = 2
    train(cfg, tmp_path / "r")
    (tmp_path / "r" / "checkpoints" / "latest.pt").write_bytes(b"torn")
    cfg.train.steps = 6
    assert train(cfg, tmp_path / "r", resume=True).step == 6
    assert "resuming from ckpt-0000004.pt instead" in capsys.readouterr().out


# rahinge and ralsgan take ragan's path through the loop and differ only in their formulas,
# which test_losses checks by hand: the default model and conditioning are enough for them
RAGAN_LIKE = ("rahinge", "ralsgan")
# dcgan32 is dcgan64's pattern one block shorter: every conditioning with the default loss
PATTERN_ONLY = ("dcgan32",)
COMBOS = [
    (m, c, lo)
    for m in MODELS.names()
    for c in CONDITIONINGS
    for lo in LOSSES.names()
    if (lo not in RAGAN_LIKE or (m, c) == ("dcgan28", "projection"))
    and (m not in PATTERN_ONLY or lo == "ragan")
]


@pytest.mark.parametrize("model, cond, loss", COMBOS)
def test_every_combination_trains(idx_dir, tmp_path, model, cond, loss):
    cfg = tiny(idx_dir, steps=2)
    cfg.model.model, cfg.model.cond, cfg.loss.loss = model, cond, loss
    cfg.model.width = 0.125
    cfg.log.log_every = 1
    trainer = Trainer(cfg, tmp_path / "r")
    before = trainer.G.fc.weight.clone()
    result = trainer.run()
    rows = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert result.step == 2 and [r["step"] for r in rows] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss_d"])) for r in rows)
    assert not torch.equal(before, trainer.G.fc.weight)
    if loss == "wgan":
        assert all(p.abs().max() <= 0.01 + 1e-7 for p in trainer.D.parameters())
    if loss in ("wgan-gp", "wgan-lp"):
        assert rows[-1]["penalty"] >= 0 and (loss == "wgan-lp" or rows[-1]["penalty"] > 0)


def test_stabilisers_change_training(idx_dir, tmp_path):
    def base():
        cfg = tiny(idx_dir, steps=3)
        cfg.loss.loss = "ns"  # the classic loss, for which label smoothing applies
        return cfg

    ref = weights(train(base(), tmp_path / "ref").final_checkpoint)["G.fc.weight"]
    variants = {
        "smoothing": lambda c: setattr(c.loss, "label_smoothing", 0.9),
        "noise": lambda c: setattr(c.train, "instance_noise", 0.2),
        "r1": lambda c: setattr(c.loss, "r1", 1.0),
        "lazy r1": lambda c: (setattr(c.loss, "r1", 1.0), setattr(c.loss, "r1_every", 2)),
        "r2": lambda c: setattr(c.loss, "r2", 1.0),
        "clip": lambda c: setattr(c.train, "grad_clip", 0.01),
        "sn": lambda c: setattr(c.model, "spectral_norm", True),
        "steps": lambda c: setattr(c.train, "d_steps", 2),
        "lr": lambda c: setattr(c.train, "lr_d", 1e-3),
        "no aux": lambda c: setattr(c.loss, "aux_weight", 0.0),
        "mbstd": lambda c: setattr(c.model, "mbstd", 4),
        "d width": lambda c: setattr(c.model, "d_width", 0.25),
        "ragan": lambda c: setattr(c.loss, "loss", "ragan"),
    }
    for name, change in variants.items():
        cfg = base()
        change(cfg)
        got = weights(train(cfg, tmp_path / name).final_checkpoint)["G.fc.weight"]
        assert not torch.equal(got, ref), name


@pytest.mark.parametrize("cond", ["concat", "projection"])
def test_auxiliary_classifier_learns_the_labels(idx_dir, tmp_path, cond):
    """AC-GAN: D's class head fits the real labels (cross-entropy falls well below the ln 10 of
    a guess); G's class term is logged (that it moves G: test_stabilisers_change_training)."""
    cfg = tiny(idx_dir, steps=60)
    cfg.model.cond, cfg.loss.aux_weight, cfg.log.log_every = cond, 1.0, 10
    cfg.train.lr_d = cfg.train.lr_g = 1e-3
    train(cfg, tmp_path / "r")
    rows = [r for r in read_metrics(tmp_path / "r" / "metrics.jsonl") if "aux_loss_d" in r]
    assert rows[0]["aux_loss_d"] > 1.5 and rows[-1]["aux_loss_d"] < 0.5
    assert all(0 < r["aux_loss_g"] < 20 for r in rows)
    D = build_discriminator("dcgan28", 10, cond, 0.25, "none", False, aux_classifier=True)
    logits, classes = D(torch.zeros(3, 1, 28, 28), torch.tensor([0, 1, 2]), classes=True)
    assert logits.shape == (3,) and classes.shape == (3, 10)


def test_d_width_sizes_d_alone(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=1)
    cfg.model.d_width = 0.5  # G keeps tiny()'s 0.25: 16 and 32 maps; D gets 32 and 64
    trainer = Trainer(cfg, tmp_path / "r")
    assert [c.out_channels for c in trainer.D.convs] == [32, 64]
    assert trainer.G.ups[0].in_channels == 32 and trainer.G.ups[0].out_channels == 16


def test_depth_adds_3x3_layers_at_every_resolution(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    cfg.model.g_depth, cfg.model.d_depth = 2, 1
    trainer = Trainer(cfg, tmp_path / "r")
    G, D = trainer.G, trainer.D
    # G (16 maps at 14×14, 32 at 7×7 at width 0.25): two per resolution; D: one per resolution
    assert [[conv.in_channels for conv, _ in r] for r in G.deeper] == [[32, 32], [16, 16]]
    assert [[conv.kernel_size for conv, _ in r] for r in D.deeper] == [[(3, 3)], [(3, 3)]]
    assert all(conv.out_channels == conv.in_channels for r in G.deeper for conv, _ in r)
    calls = []
    for r in [*G.deeper, *D.deeper]:
        for conv, _ in r:
            conv.register_forward_hook(lambda *_: calls.append(1))
    trainer.run()
    assert len(calls) >= 6  # every extra layer is on the forward path
    loaded = sampling.load_generator(tmp_path / "r")  # rebuilt from the checkpoint, deep
    assert len(loaded.G.deeper[0]) == 2
    assert torch.equal(loaded.G.deeper[1][0][0].weight, trainer.ema.G_ema.deeper[1][0][0].weight)
    assert loaded.sample(3, seed=0).shape[0] == 3
    cfg.model.g_depth, cfg.model.d_depth = 0, 0
    plain = Trainer(cfg, tmp_path / "plain")
    assert not any(len(r) for r in [*plain.G.deeper, *plain.D.deeper])  # 0: DCGAN as it was


def test_g_and_d_step_ratio_counts(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=3)
    cfg.train.d_steps, cfg.train.g_steps = 3, 2
    trainer = Trainer(cfg, tmp_path / "r")
    trainer.run()
    assert trainer.nimg == 3 * 3 * 16
    assert trainer.opt_D.state_dict()["state"][0]["step"].item() == 9
    assert trainer.opt_G.state_dict()["state"][0]["step"].item() == 6


def test_reused_fakes_are_the_fresh_fakes_of_the_same_draws(idx_dir, tmp_path):
    """--reuse-fakes runs G once per step; its updates are those of separate D and G forwards
    fed the D update's z and labels. Without it, G runs twice; with two D steps it can't reuse."""
    trainers, forwards = {}, {}
    for reuse in (True, False):
        cfg = tiny(idx_dir, steps=3, reuse_fakes=reuse)
        t = trainers[reuse] = Trainer(cfg, tmp_path / str(reuse))
        forwards[reuse] = 0

        def count(*_, reuse=reuse):
            forwards[reuse] += 1

        t.G.register_forward_hook(count)
    fresh = trainers[False]
    draw = fresh.update.draw

    def reusing_draw():  # the reusing trainer's draws, with z_g = z_d and y_g = the real labels
        fresh.update.g_draws = 0
        d = draw()
        fresh.update.g_draws = 1
        return Draws(d.real, d.z_d, d.z_d, [d.real[0][1]])

    fresh.update.draw = reusing_draw
    for _ in range(3):
        for t in trainers.values():
            t.train_step()
    assert forwards == {True: 3, False: 6}
    for part in ("G", "D"):
        a = dict(getattr(trainers[True], part).named_parameters())
        b = dict(getattr(fresh, part).named_parameters())
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6), (part, k)
    cfg = tiny(idx_dir, steps=3, reuse_fakes=True, d_steps=2)
    assert not Trainer(cfg, tmp_path / "two").update.reuse_fakes


def test_instance_noise_anneals_linearly(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=10)
    cfg.train.instance_noise = 0.5
    trainer = Trainer(cfg, tmp_path / "r")
    assert trainer.noise_nimg == 160 and trainer.noise_std() == 0.5
    trainer.nimg = 80
    assert trainer.noise_std() == pytest.approx(0.25)
    trainer.nimg = 200
    assert trainer.noise_std() == 0.0


def test_ema_half_life():
    G = torch.nn.Linear(2, 2)
    ema = EMA(G, half_life_kimg=1.0, rampup=0.0)
    assert ema.beta(batch_size=1000, nimg=10**6) == pytest.approx(0.5)
    ramped = EMA(G, half_life_kimg=10.0, rampup=0.05)
    assert ramped.beta(100, 2000) == pytest.approx(0.5)  # half-life capped at 5% of 2 kimg
    with torch.no_grad():
        G.weight.fill_(1.0)
        ema.G_ema.weight.fill_(0.0)
    ema.update(G, ema.beta(1000, 10**6))
    assert torch.allclose(ema.G_ema.weight, torch.full((2, 2), 0.5))
    ema.update(G, torch.tensor(0.5))  # a graphed step passes β as a tensor: the same update
    assert torch.allclose(ema.G_ema.weight, torch.full((2, 2), 0.75))


def test_ema_batchnorm_statistics_follow_the_step(idx_dir, tmp_path, monkeypatch):
    trainer = Trainer(tiny(idx_dir, steps=3), tmp_path / "r")
    calls = []
    recalibrate = sampling.recalibrate_batchnorm
    monkeypatch.setattr(
        loop, "recalibrate_batchnorm", lambda *a: calls.append(a) or recalibrate(*a)
    )
    G_ema = trainer.ema.G_ema
    for _ in range(2):
        trainer.train_step()
    trainer.sampler()
    trainer.save()  # the grid and the checkpoint at an epoch's end: one re-estimate between them
    assert len(calls) == 1
    trainer.train_step()  # the EMA update copies G's running statistics over G_ema's
    trainer.sampler()
    fresh = copy.deepcopy(G_ema)
    recalibrate(fresh, trainer.data.n_classes, trainer.cfg.model.z_dim)
    assert len(calls) == 2
    for ours, theirs in zip(G_ema.buffers(), fresh.buffers()):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    "budget, expected",
    [("steps", "steps"), ("kimg", "kimg"), ("epochs", "epochs"), ("max_time", "max-time")],
)
def test_budgets(idx_dir, tmp_path, budget, expected):
    cfg = tiny(idx_dir)
    setattr(cfg.train, budget, {"steps": 3, "kimg": 0.1, "epochs": 1, "max_time": 0.5}[budget])
    result = train(cfg, tmp_path / "r")
    assert result.stopped_by == expected
    assert (tmp_path / "r" / "checkpoints" / "final.pt").is_file()
    assert list((tmp_path / "r" / "samples").glob("grid-*.png"))
    assert (tmp_path / "r" / "samples" / "progress.gif").is_file()
    assert (tmp_path / "r" / "plots" / "training.png").is_file()
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"][budget] > 0
    if budget == "epochs":
        assert result.step == 12


def test_stop_flag_checkpoints_and_resumes(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=100)
    result = stop_at(Trainer(cfg, tmp_path / "r", stop=StopFlag()), 3).run()
    assert result.stopped_by == "interrupt" and result.step == 3
    assert not (tmp_path / "r" / "checkpoints" / "final.pt").exists()
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")["step"] == 3
    cfg.train.steps = 5
    assert train(cfg, tmp_path / "r", resume=True).step == 5


def test_nan_stops_with_a_clear_message(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=10)
    cfg.train.lr_d = 1e30
    cfg.train.lr_g = 1e30
    # it breaks before the first checkpoint: the message says so instead of naming an empty folder
    with pytest.raises(FashionGANError, match="became NaN/Inf; no checkpoint was written before"):
        train(cfg, tmp_path / "r")


def test_broken_weights_never_replace_a_good_checkpoint(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    cfg.log.log_every = 1000  # no log tick: only the checkpoint guard can catch it
    cfg.log.ckpt_every = 1
    trainer = Trainer(cfg, tmp_path / "r")
    original = trainer.train_step

    def poison_after_first():
        original()
        if trainer.step == 2:
            with torch.no_grad():
                trainer.G.fc.weight[0, 0] = float("nan")

    trainer.train_step = poison_after_first
    with pytest.raises(FashionGANError, match="the weights of G became NaN/Inf"):
        trainer.run()
    good = load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert good["step"] == 1 and torch.isfinite(good["G"]["fc.weight"]).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: setattr(c.loss, "label_smoothing", 0.1), "expected the real-image target"),
        (
            lambda c: (setattr(c.loss, "loss", "hinge"), setattr(c.loss, "label_smoothing", 0.9)),
            "applies to minimax, ns and lsgan",
        ),
        (lambda c: setattr(c.loss, "label_smoothing", 0.9), "ns and lsgan, not --loss ragan"),
        (
            lambda c: (setattr(c.loss, "loss", "wgan-gp"), setattr(c.model, "d_norm", "batch")),
            "per-sample critic",
        ),
        (lambda c: setattr(c.train, "batch_size", 0), "--batch-size 0"),
        (lambda c: setattr(c.train, "betas", (0.5, 1.5)), "--betas"),
        (lambda c: setattr(c.train, "epochs", 0), "no budget"),
        (lambda c: setattr(c.model, "model", "resnet"), "unknown model"),
        (lambda c: setattr(c.train, "d_steps", 0), "--d-steps"),
        (
            lambda c: (setattr(c.model, "cond", "none"), setattr(c.loss, "aux_weight", 1.0)),
            "--aux-weight needs class labels",
        ),
        (lambda c: setattr(c.loss, "aux_weight", -1.0), "--aux-weight -1.0"),
        (lambda c: setattr(c.train, "lr_decay_start", 1.0), "--lr-decay-start 1.0"),
        (lambda c: setattr(c.train, "lr_decay", "step"), "--lr-decay 'step'"),
        (lambda c: setattr(c.model, "mbstd", 1), "--mbstd 1: expected a group size of 2"),
        (lambda c: setattr(c.model, "mbstd", -2), "--mbstd -2: expected a group size of 2"),
        (lambda c: setattr(c.model, "d_width", -0.5), "--d-width -0.5"),
    ],
)
def test_validation(change, message):
    cfg = RunConfig()
    change(cfg)
    with pytest.raises(FashionGANError, match=message):
        validate(cfg)


def test_reproduction_presets_keep_their_classic_sizes():
    assert from_dict(load_preset("dcgan64")).model.width == 1.0  # 512-256-128-64 maps
    assert from_dict(load_preset("cdcgan-bce")).model.width == 1.0  # 128·7·7 → 64 → 1
    # the recipes these copy put BatchNorm in D (without it, 10 minutes of cdcgan-bce collapsed
    # each class to about one image: recall 0.001, against 0.078 with it; benchmarks/RESULTS.md)
    assert [from_dict(load_preset(n)).model.d_norm for n in ("cdcgan-bce", "dcgan64")] == [
        "batch",
        "batch",
    ]
    for name in preset_names():  # a narrower D is ours (default, small): the classics size D as G
        m = from_dict(load_preset(name)).model
        ours = {"default": 0.5, "small": 0.375, "small-data": 0.5}
        assert m.d_width == ours.get(name, 0.0), name
        # and only the default (and small-data, the default with ADA) has D's extra 3×3 layers
        assert (m.g_depth, m.d_depth) == (0, 1 if name in ("default", "small-data") else 0), name
    assert from_dict(load_preset("default")) == RunConfig()
    assert RunConfig().loss.loss == "ragan" and from_dict(load_preset("small")).loss.loss == "ns"


@pytest.mark.parametrize("preset", preset_names())
def test_presets_load_and_train(preset, idx_dir, tmp_path):
    cfg = from_dict(load_preset(preset))
    validate(cfg)
    cfg.data.data = str(idx_dir)
    cfg.model.width = 0.125
    cfg.train.batch_size, cfg.train.steps, cfg.log.progress = 16, 2, False
    assert train(cfg, tmp_path / preset).step == 2


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(FashionGANError, match="unknown key train.lr"):
        from_dict({"train": {"lr": 1}})


def test_compiled_step_matches_eager_with_penalties(idx_dir, tmp_path):
    """--compile: the gradient penalties' double backward runs on the eager D, and a step of
    WGAN-GP with R1 lands on the same weights as eager mode."""
    runs = {}
    for compiled in (False, True):
        cfg = tiny(idx_dir, steps=2, compile=compiled)
        cfg.model.width, cfg.loss.loss, cfg.loss.r1 = 0.125, "wgan-gp", 1.0
        # D without its 3×3 layers here: at init the deep D hands G ~20× smaller gradients, some
        # of G's entries sit at rounding level (1e-9), and Adam's first steps turn those into
        # visible updates of either sign, so two steps would compare rounding, not graphs
        cfg.model.d_depth = 0
        runs[compiled] = weights(train(cfg, tmp_path / str(compiled)).final_checkpoint)
    for k, v in runs[False].items():
        assert torch.allclose(v, runs[True][k], rtol=1e-4, atol=1e-5), k
    # the deep D (the default's), compiled, gives what eager D gives: logits, class logits and
    # the input gradient G learns from, with D's weights frozen (G's step) or not (D's)
    torch.manual_seed(0)
    D = build_discriminator("dcgan28", 10, "projection", 0.25, "none", False, True, 0, depth=1)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    compiled_D = torch.compile(D)
    for frozen in (False, True):
        D.requires_grad_(not frozen)
        results = []
        for net in (D, compiled_D):
            xi = x.clone().requires_grad_(True)
            logits, classes = net(xi, y, classes=True)
            (logits.sum() + classes.logsumexp(1).sum()).backward()
            results.append((logits.detach(), classes.detach(), xi.grad))
        for eager, comp in zip(*results):
            assert torch.allclose(eager, comp, rtol=1e-4, atol=1e-7)


def make_old_run(run, key: str, section: str = "loss") -> dict:
    """Remove <section>.<key> from a run's checkpoint and config.json, as a run made before
    that setting existed would have them; returns the edited config."""
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    del state["config"][section][key]
    torch.save(state, run / "checkpoints" / "latest.pt")
    saved = json.loads((run / "config.json").read_text())
    del saved[section][key]
    (run / "config.json").write_text(json.dumps(saved))
    return saved


def test_runs_from_before_the_auxiliary_classifier_resume_without_one(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    cfg.loss.aux_weight = 0.0
    run = tmp_path / "old"
    train(cfg, run)
    saved = make_old_run(run, "aux_weight")
    assert saved_run_config(saved, "config.json").loss.aux_weight == 0.0
    cfg.loss.aux_weight, cfg.train.steps = 0.0, 4
    assert train(cfg, run, resume=True).step == 4
    unset = RunConfig()
    assert aux_weight(unset) == 1.0
    unset.model.cond = "none"
    assert aux_weight(unset) == 0.0


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_learning_rates_decay_over_the_second_half_of_the_budget(idx_dir, tmp_path, schedule):
    cfg = tiny(idx_dir, steps=12, lr_decay=schedule, lr_decay_start=0.5)
    cfg.log.log_every = 1
    train(cfg, tmp_path / "r")
    rows = [r for r in read_metrics(tmp_path / "r" / "metrics.jsonl") if "lr_g" in r]
    lrs = [r["lr_g"] for r in rows]
    assert lrs[:7] == [cfg.train.lr_g] * 7  # steps 1..7 start at progress ≤ 0.5
    assert all(a > b for a, b in zip(lrs[6:], lrs[7:]))
    assert lrs[-1] < 0.3 * cfg.train.lr_g
    assert [r["lr_d"] / cfg.train.lr_d for r in rows] == pytest.approx(
        [lr / cfg.train.lr_g for lr in lrs]
    )


@pytest.mark.parametrize("penalty", ["r1", "r2"])
def test_lazy_penalty_applies_every_nth_step_at_n_times_the_weight(idx_dir, tmp_path, penalty):
    def config(steps, every):
        cfg = tiny(idx_dir, steps=steps)
        cfg.loss.r1 = cfg.loss.r2 = 0.0
        setattr(cfg.loss, penalty, 1.0)
        cfg.loss.r1_every, cfg.log.log_every = every, 1
        return cfg

    train(config(7, 3), tmp_path / "lazy")
    rows = [r for r in read_metrics(tmp_path / "lazy" / "metrics.jsonl") if "penalty" in r]
    assert [r["step"] for r in rows if r["penalty"] > 0] == [1, 4, 7]
    train(config(1, 1), tmp_path / "eager")
    first = read_metrics(tmp_path / "eager" / "metrics.jsonl")[0]["penalty"]
    assert rows[0]["penalty"] == pytest.approx(3 * first, rel=1e-5)  # same first step, ×3


def test_r2_is_r1_taken_on_the_fakes(idx_dir, tmp_path):
    """The first step's R2 is the R1 of D on the same step's (detached) fakes: swap the real
    batch for those fakes and R1 reads what R2 read."""
    cfg = tiny(idx_dir, steps=1)
    cfg.loss.r1, cfg.loss.r2, cfg.log.log_every = 0.0, 1.0, 1
    trainer = Trainer(cfg, tmp_path / "r2")
    draws = trainer.update.draw()
    fakes = [trainer.nets.G_step(z, y).detach() for z, (_, y) in zip(draws.z_d, draws.real)]
    D_before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    trainer.update.maths(draws, True, 1, 0.0)
    r2 = trainer.stats[STAT_KEYS.index("penalty")].item()
    trainer.D.load_state_dict(D_before)
    _, y = draws.real[0]
    expected = 0.5 * cfg.loss.r1_every * r1_penalty(trainer.D, fakes[0], y).item()
    assert r2 > 0 and r2 == pytest.approx(expected, rel=1e-4)


def test_runs_from_before_lazy_r1_keep_r1_every_step(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    cfg.loss.r1, cfg.loss.r1_every = 1.0, 1
    run = tmp_path / "old"
    train(cfg, run)
    saved = make_old_run(run, "r1_every")
    assert saved_run_config(saved, "config.json").loss.r1_every == 1
    assert RunConfig().loss.r1_every == 16 and RunConfig().loss.r1 == 0.1
    cfg.train.steps = 4  # resumes without a settings conflict
    assert train(cfg, run, resume=True).step == 4


def test_runs_from_before_d_width_keep_d_as_wide_as_g(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    cfg.model.d_width = 0.0  # what such a run had: D at G's width 0.25, 16 and 32 maps
    run = tmp_path / "old"
    train(cfg, run)
    saved = make_old_run(run, "d_width", section="model")
    assert saved_run_config(saved, "config.json").model.d_width == 0.0
    assert (RunConfig().model.width, RunConfig().model.d_width) == (1.0, 0.5)
    cfg.train.steps = 4  # resumes without a settings conflict, D as it was
    assert train(cfg, run, resume=True).step == 4
    D = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["D"]
    assert [D[f"convs.{i}.weight"].shape[0] for i in (0, 1)] == [16, 32]


def test_runs_from_before_d_depth_keep_d_shallow(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=2)
    cfg.model.d_depth = 0  # what such a run had: no 3×3 layers in D
    run = tmp_path / "old"
    train(cfg, run)
    saved = make_old_run(run, "d_depth", section="model")
    assert saved_run_config(saved, "config.json").model.d_depth == 0
    assert RunConfig().model.d_depth == 1 and RunConfig().model.g_depth == 0
    cfg.train.steps = 4  # resumes without a settings conflict, D as it was
    assert train(cfg, run, resume=True).step == 4
    D = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["D"]
    assert not any(k.startswith("deeper.") for k in D)


def test_progress_bar_is_drawn_only_on_a_terminal(idx_dir, tmp_path, capsys, monkeypatch):
    # redirected (capsys: not a TTY), the bar's carriage returns would make the log one line
    cfg = tiny(idx_dir, steps=4)
    cfg.log.progress = True
    train(cfg, tmp_path / "redirected")
    out, err = capsys.readouterr()
    assert "\r" not in err and "step/s" not in err and "s/step" not in err
    assert "stopped by steps at step 4" in out  # the console lines still come
    leader, follower = pty.openpty()  # a terminal while its leader end is open
    try:
        with os.fdopen(follower, "w") as terminal:
            monkeypatch.setattr(sys, "stderr", terminal)
            shown = Monitor(tmp_path / "redirected", total=4, initial=0, progress=True)
            hidden = Monitor(tmp_path / "redirected", total=4, initial=0, progress=False)
            assert not shown.bar.disable and hidden.bar.disable
            shown.close()
            hidden.close()
    finally:
        os.close(leader)
