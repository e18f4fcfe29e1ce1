"""Which torch device a command runs on: --device auto|cpu|cuda|mps, checked before any work."""

import torch

from fashiongan.errors import FashionGANError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FashionGANError("--device cuda: no CUDA device is available; use --device cpu")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise FashionGANError("--device mps: no Apple GPU is available; use --device cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise FashionGANError(f"unknown --device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)
