"""The one place G and D are made from a run's settings: training, sampling, export and serve
all build through here (a saved config is upgraded by `config.saved_run_config` first)."""

from fashiongan._version import __version__
from fashiongan.config import ModelConfig, RunConfig, aux_weight, saved_run_config
from fashiongan.errors import FashionGANError
from fashiongan.models import build_discriminator, build_generator
from fashiongan.models.dcgan import Discriminator, Generator
from fashiongan.validation import check_choices


def generator_for(m: ModelConfig, n_classes: int, channels: int = 1) -> Generator:
    return build_generator(
        m.model, m.z_dim, n_classes, m.cond, m.width, m.embed_dim, m.g_depth, channels
    )


def discriminator_for(cfg: RunConfig, n_classes: int, channels: int = 1) -> Discriminator:
    m = cfg.model
    width, aux = m.d_width or m.width, aux_weight(cfg) > 0
    return build_discriminator(
        m.model,
        n_classes,
        m.cond,
        width,
        m.d_norm,
        m.spectral_norm,
        aux,
        m.mbstd,
        m.d_depth,
        channels,
    )


MODEL_KEYS = ("model", "z_dim", "cond", "width", "embed_dim")  # what every version saved


def generator_from_state(state: dict, origin: str) -> tuple[Generator, RunConfig]:
    """A checkpoint's (or exported file's) generator, untrained, and the run's settings,
    upgraded from older versions; a one-line error for a file that lacks what G needs."""
    try:
        saved = state["config"]
        missing = [k for k in MODEL_KEYS if k not in saved["model"]]
        if missing:
            raise KeyError(missing[0])
        n_classes = len(state["class_names"])
        cfg = saved_run_config(saved, origin)
    except (KeyError, TypeError, AttributeError) as e:
        raise FashionGANError(
            f"{origin}: checkpoint lacks {e} (made by fashiongan "
            f"{state.get('version', '?')}; this is {__version__})"
        ) from None
    check_choices(cfg)
    # the images' channels: saved by runs on colour data; absent, grayscale
    return generator_for(cfg.model, n_classes, int(state.get("channels", 1))), cfg
