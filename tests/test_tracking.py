"""TensorBoard: live events of `train --tensorboard` and the converter for old runs, read back
with TensorBoard's own reader."""

import json

import pytest

from fashiongan.cli import main
from fashiongan.config import RunConfig
from fashiongan.errors import FashionGANError
from fashiongan.fileio import read_metrics
from fashiongan.tracking import TAGS, convert_run, tag_of
from fashiongan.training.loop import Trainer, train
from test_training import stop_at


def tiny(idx_dir, steps: int) -> RunConfig:
    cfg = RunConfig()
    cfg.data.data = str(idx_dir)
    cfg.model.width, cfg.model.z_dim = 0.25, 16
    cfg.train.batch_size, cfg.train.epochs, cfg.train.steps = 16, 0, steps
    cfg.log.log_every, cfg.log.progress, cfg.log.grid_seeds = 2, False, 3
    cfg.log.sample_every = 4
    cfg.log.tensorboard = True
    return cfg


def read_events(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def scalars(ea) -> dict:
    return {tag: {e.step: e.value for e in ea.Scalars(tag)} for tag in ea.Tags()["scalars"]}


def test_training_writes_every_column_the_grids_and_the_config(idx_dir, tmp_path):
    run = train(tiny(idx_dir, 8), tmp_path / "r")
    rows = read_metrics(run.run_dir / "metrics.jsonl")
    ea = read_events(run.run_dir / "tensorboard")
    got = scalars(ea)
    numeric = {k for r in rows for k, v in r.items() if k != "step" and isinstance(v, float)}
    assert {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "lr_g", "img_per_s"} <= numeric
    assert {tag_of(k) for k in numeric} == set(got)
    for r in rows:
        for k in numeric & r.keys():
            assert got[tag_of(k)][r["step"]] == pytest.approx(r[k], rel=1e-6)
    grids = sorted(p.name for p in (run.run_dir / "samples").glob("grid-*.png"))
    images = ea.Images("samples/class_x_seed")
    assert [f"grid-{e.step:07d}.png" for e in images] == grids and len(grids) >= 2
    from PIL import Image

    with Image.open(run.run_dir / "samples" / grids[0]) as png:  # the grid itself, full size
        assert (images[0].width, images[0].height) == png.size
    text = ea.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`").removeprefix("json"))["train"]["steps"] == 8
    hp = ea.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hp and "_hparams_/session_start_info" in hp


def test_resume_drops_events_after_the_checkpoint(idx_dir, tmp_path):
    cfg = tiny(idx_dir, 6)
    cfg.log.ckpt_every = 4
    stop_at(Trainer(cfg, tmp_path / "r"), 6).run()  # as if Ctrl-C came during step 6
    cfg.train.steps = 10
    train(cfg, tmp_path / "r", resume=True)
    got = scalars(read_events(tmp_path / "r" / "tensorboard"))
    rows = {r["step"]: r for r in read_metrics(tmp_path / "r" / "metrics.jsonl") if "loss_d" in r}
    assert sorted(got["loss/D"]) == sorted(rows)  # one value per step, the resumed run's
    for step, value in got["loss/D"].items():
        assert value == pytest.approx(rows[step]["loss_d"], rel=1e-6)


def test_converter_reproduces_a_run_without_tensorboard(idx_dir, tmp_path, capsys):
    cfg = tiny(idx_dir, 8)
    cfg.log.tensorboard = False
    run = train(cfg, tmp_path / "old")
    assert not (run.run_dir / "tensorboard").exists()
    assert main(["tensorboard", str(run.run_dir)]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    got = scalars(read_events(run.run_dir / "tensorboard"))
    rows = read_metrics(run.run_dir / "metrics.jsonl")
    assert got["loss/G"] == pytest.approx({r["step"]: r["loss_g"] for r in rows})
    # never merged into existing events; --force replaces them whole
    assert main(["tensorboard", str(run.run_dir)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["tensorboard", str(run.run_dir), "--force"]) == 0
    assert len(list((run.run_dir / "tensorboard").iterdir())) == 1
    assert main(["tensorboard", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run directory" in err


def test_tags_group_known_columns_and_keep_unknown_ones():
    assert tag_of("loss_d") == "loss/D" and tag_of("augment_p") == "augment/ada_p"
    assert tag_of("new_stat") == "other/new_stat"
    assert len(set(TAGS.values())) == len(TAGS)


def test_missing_package_is_one_line(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    from fashiongan.tracking import TensorBoardWriter

    with pytest.raises(FashionGANError, match=r"pip install 'fashiongan\[tensorboard\]'"):
        TensorBoardWriter(tmp_path)
    with pytest.raises(FashionGANError):
        convert_run(tmp_path)
