"""What a regulariser of D is to the training step: a penalty on D, its strength in a run's
settings, and how often it is applied. The step adds `weight(cfg) · penalty(...)` to D's loss;
it never asks a regulariser's name. A new regulariser is one file that registers a Regularizer
plus its import line in `fashiongan/regularizers/__init__.py`; its strength is given with
`--reg NAME=STRENGTH` unless it has a flag of its own (R1's --r1, R2's --r2)."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fashiongan.registry import Registry


def strength_from_reg(name: str) -> Callable:
    """γ from --reg NAME=γ (0 when not given)."""

    def strength(cfg) -> float:
        return dict(parse_reg(cfg.loss.reg)).get(name, 0.0)

    return strength


def parse_reg(items) -> list[tuple[str, float]]:
    """('dragan=10', ...) → [('dragan', 10.0), ...]; a malformed item raises ValueError."""
    out = []
    for item in items:
        name, sep, value = str(item).partition("=")
        try:
            if not sep:
                raise ValueError
            out.append((name.strip(), float(value)))
        except ValueError:
            raise ValueError(f"--reg {item!r}: expected NAME=STRENGTH, e.g. dragan=10") from None
    return out


@dataclass(frozen=True)
class Regularizer:
    name: str
    summary: str  # one line: what it penalises, with its flag
    # (D, real, fake, y, uniform) → the unweighted penalty, a scalar; inputs are float32
    penalty: Callable[..., torch.Tensor]
    strength: Callable  # cfg → γ in this run (0 = off)
    halved: bool = True  # applied as γ/2·penalty (R1's convention) rather than γ·penalty
    flag: str = ""  # its own flag (R1's --r1); "" = set with --reg NAME=STRENGTH
    draws: bool = False  # draws random numbers inside the step (no CUDA-graph replay)

    def weight(self, cfg) -> float:
        """Its factor on a lazy step: γ (or γ/2) × --r1-every, since it runs 1/N as often."""
        gamma = self.strength(cfg)
        return (0.5 * gamma if self.halved else gamma) * cfg.loss.r1_every


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")
