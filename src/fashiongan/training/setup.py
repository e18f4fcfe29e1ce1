"""A run's set-up: its training data, what torchrun cannot do, and the networks, their EMA,
optimisers and the wrappers the step calls (DDP under torchrun, torch.compile with --compile)."""

import warnings
from pathlib import Path

import torch

from fashiongan.config import RunConfig
from fashiongan.data.datasets import ImageDataset, default_cache_dir, load_dataset, own_options
from fashiongan.errors import FashionGANError
from fashiongan.models import MODELS
from fashiongan.models.build import discriminator_for, generator_for
from fashiongan.training.accel import make_adam
from fashiongan.training.distributed import Ranks, global_batchnorm
from fashiongan.training.ema import EMA
from fashiongan.training.step import Nets


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


def build_nets(
    cfg: RunConfig, n_classes: int, device: torch.device, ranks: Ranks, kind: str, channels: int = 1
):
    """G, D, their EMA and optimisers, and the wrappers the step calls (see step.Nets)."""
    t = cfg.train
    G = generator_for(cfg.model, n_classes, channels).to(device)
    D = discriminator_for(cfg, n_classes, channels).to(device)
    if t.channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    ema = EMA(G, t.ema_kimg, t.ema_rampup) if t.ema_kimg > 0 else None
    if ranks.enabled and t.sync_bn:  # after the EMA copy, whose BatchNorm stays local
        global_batchnorm(G)
        global_batchnorm(D)
    G_train, D_train = G, D
    if ranks.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # a 1-channel conv's weight has two valid channels-last strides; DDP warns that its
        # bucket picked the other one, which costs a copy, not correctness
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        ids = dict(device_ids=[device.index]) if device.type == "cuda" else {}
        G_train = DDP(G, broadcast_buffers=False, **ids)
        D_train = DDP(D, broadcast_buffers=False, **ids)
    maybe_compiled = torch.compile if t.compile else (lambda m: m)
    G_step, D_step = maybe_compiled(G_train), maybe_compiled(D_train)
    D_frozen = maybe_compiled(D) if ranks.enabled else D_step
    adam = dict(betas=t.betas, kind=kind, graphed=t.cuda_graph, device=device)
    opt_G = make_adam(G.parameters(), t.lr_g, **adam)
    opt_D = make_adam(D.parameters(), t.lr_d, **adam)
    return Nets(G, D, G_step, D_step, D_frozen, opt_G, opt_D, ema)


def training_data(cfg: RunConfig, data_env: str | None, cache_dir: Path | None) -> ImageDataset:
    """The run's training set at its model's resolution (a seeded --subset of it)."""
    data = load_dataset(
        cfg.data.data,
        cfg.data.split,
        cfg.data.subset,
        cfg.train.seed,
        MODELS.get(cfg.model.model).resolution,
        data_env,
        cfg.data.class_names,
        **own_options(cfg.data, cache_dir or default_cache_dir()),
    )
    if not data.labelled and cfg.model.cond != "none":
        raise FashionGANError(
            f"--data {cfg.data.data}: the images have no labels (no class folders or "
            f"labels.csv); train an unconditional model with --cond none"
        )
    return data
