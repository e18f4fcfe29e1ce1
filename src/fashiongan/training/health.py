"""A run's numerical health: the first step at which a loss or gradient stopped being finite,
and the log-tick signs of a game that has stopped teaching G (D winning outright, G's gradient
vanishing). Both are read at log ticks only, so the hot loop never waits on the device."""

import torch

from fashiongan.losses import GANLoss

# quantities checked every step; a NaN/Inf in a penalty or the auxiliary loss reaches grad_norm_*
WATCHED = ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g")
# how long a collapse sign must last before it is reported
COLLAPSE_STEPS = 500
# G's gradient norm counts as vanished below this fraction of its peak so far
VANISHED = 1e-3


class NonFinite:
    """first[i]: the first step at which WATCHED[i] was NaN/Inf (-1 = never), kept on the
    training device and updated without a host sync."""

    def __init__(self, device: torch.device):
        self.first = torch.full((len(WATCHED),), -1, dtype=torch.long, device=device)

    def observe(self, step: int | torch.Tensor, values: list[torch.Tensor]) -> None:
        """step: a number, or a device tensor in a graphed step (updated in place for it)."""
        bad = ~torch.isfinite(torch.stack([v.detach().float() for v in values]))
        self.first.copy_(torch.where(bad & (self.first < 0), step, self.first))

    def report(self) -> tuple[int, list[str]] | None:
        """(first bad step, the quantities bad at that step), or None while all is finite."""
        first = self.first.tolist()  # a host sync: call at log ticks only
        hits = [s for s in first if s >= 0]
        if not hits:
            return None
        step = min(hits)
        return step, [name for name, s in zip(WATCHED, first) if s == step]

    def reset(self) -> None:
        self.first.fill_(-1)


NAN_REMEDIES = (
    "try lower --lr-d/--lr-g, --grad-clip 10, --r1 0.1, --loss wgan-gp, or --loss hinge "
    "--spectral-norm (or --on-nan rollback to retry at half the learning rates)"
)


def kept_checkpoint(ckpt_dir) -> str:
    """Where the last good state is, for a message: the checkpoint folder, or that there is none
    yet (a run that breaks before its first save has nothing to point to)."""
    from pathlib import Path

    d = Path(ckpt_dir)
    if d.is_dir() and any(d.glob("*.pt")):
        return f"the last good checkpoint is kept in {d}"
    return "no checkpoint was written before it (the run must start over)"


def nan_message(step: int, names: list[str], ckpt_dir) -> str:
    where = kept_checkpoint(ckpt_dir)
    return f"step {step}: {', '.join(names)} became NaN/Inf; {where}; {NAN_REMEDIES}"


class CollapseWatch:
    """Warns once per stretch when, for COLLAPSE_STEPS steps or more,
      - D wins outright: D(x) > 0.99 and D(G(z)) < 0.01 (losses whose D outputs are
        probabilities), or a hinge or relativistic D loss of ~0;
      - G's gradient vanishes: |∇G| below VANISHED × its peak so far.
    A stretch that ends after its warning is reported as over."""

    def __init__(self, loss: GANLoss):
        self.loss_name, self.probabilistic = loss.name, loss.probabilistic
        self.saturating = loss.saturating
        self.zero_when_d_wins = loss.zero_when_d_wins
        self.since: dict[str, int | None] = {"d_wins": None, "g_vanishes": None}
        self.warned: dict[str, bool] = {"d_wins": False, "g_vanishes": False}
        self.peak_grad_g = 0.0

    def _d_wins(self, row: dict) -> bool:
        if self.probabilistic:
            return row["d_real"] > 0.99 and row["d_fake"] < 0.01
        # hinge: every margin met; relativistic: every real outscores every fake by ~5 logits
        return self.zero_when_d_wins and row["loss_d"] < 0.01

    def update(self, row: dict) -> list[str]:
        """The warnings this log row starts or ends (usually none)."""
        g = row["grad_norm_g"]
        signs = {
            "d_wins": self._d_wins(row),
            "g_vanishes": self.peak_grad_g > 0 and g < VANISHED * self.peak_grad_g,
        }
        self.peak_grad_g = max(self.peak_grad_g, g)
        step, out = row["step"], []
        for key, on in signs.items():
            if not on:
                if self.warned[key]:
                    out.append(
                        f"step {step}: over: {self._what(key)} (since step {self.since[key]})"
                    )
                self.since[key], self.warned[key] = None, False
                continue
            if self.since[key] is None:
                self.since[key] = step
            if not self.warned[key] and step - self.since[key] >= COLLAPSE_STEPS:
                self.warned[key] = True
                out.append(self._warning(key, row))
        return out

    @staticmethod
    def _what(key: str) -> str:
        return "D wins outright" if key == "d_wins" else "G's gradient has vanished"

    def _warning(self, key: str, row: dict) -> str:
        head = f"warning: step {row['step']}: {self._what(key)} since step {self.since[key]}"
        if key == "d_wins":
            values = (
                f"D(x) {row['d_real']:.3f}, D(G(z)) {row['d_fake']:.4f}"
                if self.probabilistic
                else f"{self.loss_name} D loss {row['loss_d']:.4f}"
            )
            return (
                f"{head} ({values}): G learns little from a saturated D; try --instance-noise "
                f"0.1, --label-smoothing 0.9, a lower --lr-d, or --loss hinge --spectral-norm"
            )
        return f"{head} (|∇G| {row['grad_norm_g']:.2e}, peak {self.peak_grad_g:.2e}): " + (
            f"--loss {self.loss_name} saturates when D rejects every fake; use --loss ns"
            if self.saturating
            else "G has stopped learning; try a lower --lr-d or --d-steps 1"
        )
