"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): each transform is applied to each image D sees with probability p,
and p follows D's overfitting signal r = E[sign(D(real))]: every INTERVAL steps p moves up when
r exceeds the target (0.6 in the paper) and down otherwise, by as much as lets it cross 0 → 1 in
--ada-kimg thousand images. `--augment-p P` fixes p for experiments.

The transforms are differentiable and cheap on 2 CPU cores (the paper's full pipeline of
arbitrary rotations and scalings resamples every image, several times the cost of a step here):
horizontal flip, integer translation by up to 1/8 of the side (black border), brightness,
contrast, saturation (colour only) and cutout of a quarter of the image, each drawn per image.
p lives on the device and is adjusted there: no host sync. Its state (p, the signal accumulated
since the last adjustment) is in every checkpoint and restored exactly.
"""

import torch

from fashiongan.training import augment

INTERVAL = 4  # steps between adjustments, as in the paper


class ADA:
    def __init__(self, device, batch: int, target: float, kimg: float, fixed: float | None):
        self.target, self.fixed = target, fixed
        self.adjust = batch * INTERVAL / (kimg * 1000)
        self.p = torch.full((), 0.0 if fixed is None else fixed, device=device)
        self.signal = torch.zeros((), device=device)  # Σ over steps of the batch's E[sign]
        self.steps = 0  # steps accumulated in `signal`

    def observe(self, real_logits: torch.Tensor, batch_mean) -> None:
        """After a D update: accumulate its sign signal; every INTERVAL steps move p."""
        if self.fixed is not None:
            return
        with torch.no_grad():
            self.signal += batch_mean(torch.sign(real_logits.float()))
            self.steps += 1
            if self.steps == INTERVAL:
                r = self.signal / INTERVAL
                self.p.add_(torch.sign(r - self.target) * self.adjust).clamp_(0.0, 1.0)
                self.signal.zero_()
                self.steps = 0

    def state_dict(self) -> dict:
        return {"p": self.p.item(), "signal": self.signal.item(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.p.fill_(state["p"] if self.fixed is None else self.fixed)
        self.signal.fill_(state["signal"])
        self.steps = int(state["steps"])


def ada_augment(x: torch.Tensor, p: torch.Tensor, rand, randint) -> torch.Tensor:
    """x: float B×C×H×W in [-1, 1]; each transform on each image with probability p."""
    B = x.shape[0]

    def chosen() -> torch.Tensor:  # B×1×1×1: whether this image gets this transform
        return rand((B, 1, 1, 1)) < p

    x = torch.where(chosen(), x.flip(-1), x)
    x = torch.where(chosen(), augment.translation(x, randint), x)
    x = torch.where(chosen(), x + (rand((B, 1, 1, 1)) - 0.5), x)  # brightness
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = torch.where(chosen(), (x - mean) * (rand((B, 1, 1, 1)) + 0.5) + mean, x)  # contrast
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = torch.where(chosen(), (x - mean) * (rand((B, 1, 1, 1)) * 2) + mean, x)  # saturation
    return torch.where(chosen(), augment.cutout(x, randint), x)
