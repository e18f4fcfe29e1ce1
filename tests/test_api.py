"""The Python API: fashiongan.train with the CLI's settings, sample/grid, evaluate's result."""

import numpy as np
import pytest
from PIL import Image

import fashiongan
from fashiongan.errors import FashionGANError


def test_train_takes_the_cli_settings_and_resumes(idx_dir, tmp_path):
    out = tmp_path / "run"
    kw = dict(
        data=str(idx_dir),
        class_names="fashion",
        width=0.25,
        z_dim=16,
        batch_size=16,
        epochs=0,
        progress=False,
    )
    run = fashiongan.train(out, steps=3, max_time="5m", betas=[0.5, 0.9], **kw)
    assert run.run_dir == out and run.step == 3 and run.final_checkpoint.is_file()
    saved = fashiongan.api.settings_of(out)
    assert (
        saved["max_time"] == 300 and tuple(saved["betas"]) == (0.5, 0.9) and saved["width"] == 0.25
    )
    more = fashiongan.train(out, resume=True, steps=5)
    assert more.step == 5 and more.trained_nimg == 2 * 16
    gen = fashiongan.load_generator(out)
    images = gen.sample(6, labels=["sneaker", "bag", 0, 1, 2, 3], seed=1)
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, gen.sample(6, labels=["sneaker", "bag", 0, 1, 2, 3], seed=1))
    picture = fashiongan.grid(images, ncol=3)
    assert isinstance(picture, Image.Image) and picture.size == (2 * (3 * 30 + 2), 2 * 62)
    assert isinstance(gen.grid(seeds=3), Image.Image)
    assert fashiongan.curves(out).get_axes()  # a Figure with its panels
    assert fashiongan.curves(out)._repr_png_()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(lossx="ns"), "unknown setting 'lossx'"),
        (dict(loss="nss"), "unknown loss"),
        (dict(max_time="soon"), "--max-time 'soon'"),
        (dict(kimg=float("nan")), "--kimg nan"),
        (dict(steps="abc"), "steps='abc': expected int"),
        (dict(steps=2.5), "steps=2.5: expected int"),
        (dict(lr_g="1e-3"), "lr_g='1e-3': expected float"),
        (dict(spectral_norm="yes"), "spectral_norm='yes': expected bool"),
        (dict(betas=5), "betas=5: expected 2 numbers"),
        (dict(loss=3), "loss=3: expected str"),
    ],
)
def test_train_refuses_bad_settings_in_one_line(tmp_path, kw, message):
    with pytest.raises(FashionGANError, match=message):
        fashiongan.train(tmp_path / "bad", **{"steps": 1, **kw})
    assert not (tmp_path / "bad").exists()


def test_grid_refuses_floats():
    with pytest.raises(FashionGANError, match="uint8 N×H×W"):
        fashiongan.grid(np.zeros((2, 28, 28), np.float32))
