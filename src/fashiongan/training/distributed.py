"""Data-parallel training under `torchrun` (DistributedDataParallel), and what a GAN needs on top.

Every rank holds the same state: the same weights, optimiser state, EMA, random generators and
data permutation. Each step, every rank draws the global batch's latents and labels and keeps its
slice of them and of the global batch's images. So a checkpoint does not depend on the rank or
the number of ranks, and N processes at global batch B compute the step one process computes at
batch B. The exceptions are BatchNorm statistics, taken per rank unless --sync-bn, and the float
rounding of the gradient all-reduce.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn as nn

from fashiongan.errors import FashionGANError


@dataclass
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of n."""
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


def setup(device: str) -> Ranks:
    """Join the process group torchrun describes in the environment (once per process). gloo
    for CPU, NCCL for CUDA. Without torchrun (no WORLD_SIZE, or 1): a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_available():
        raise FashionGANError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "mps":
        raise FashionGANError("torchrun with --device mps: use --device cpu or cuda")
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank)


def teardown(ranks: Ranks) -> None:
    if ranks.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj, ranks: Ranks):
    """Rank 0's value of a picklable object, on every rank."""
    if not ranks.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean_(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Average t over the ranks, in place."""
    if ranks.enabled:
        dist.all_reduce(t)
        t /= ranks.world
    return t


def global_mean(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The mean of t over the global batch (every rank's rows), differentiable: what the mean
    of one process's whole batch would be. Each rank holds as many rows."""
    if not ranks.enabled:
        return t.mean()
    return dist_fn.all_reduce(t.sum().reshape(1))[0] / (t.numel() * ranks.world)


def agree_any(flags: list[bool], ranks: Ranks, device: torch.device) -> list[bool]:
    """Each flag true on every rank if it is true on any rank (a stop request, say)."""
    if not ranks.enabled:
        return flags
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def earliest(first: torch.Tensor, ranks: Ranks) -> None:
    """NonFinite.first (−1 = never) replaced in place by the earliest step over the ranks."""
    if not ranks.enabled:
        return
    never = torch.iinfo(torch.long).max
    t = torch.where(first < 0, never, first)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    first.copy_(torch.where(t == never, -1, t))


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics are those of the global batch: per-channel sums
    all-reduced (with autograd) over the ranks, so a BatchNorm network trains across N ranks as
    it does in one process. torch's SyncBatchNorm is GPU-only; this runs on gloo and NCCL alike.
    Same parameters and buffers as nn.BatchNorm2d, so checkpoints are interchangeable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        C = x.shape[1]
        xf = x.float()
        count = torch.full((1,), xf.numel() / C, device=x.device)
        stats = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count])
        stats = dist_fn.all_reduce(stats)  # a sum over ranks that backpropagates
        n = stats[-1]
        mean = stats[:C] / n
        var = (stats[C : 2 * C] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every nn.BatchNorm2d in module (in place) by a GlobalBatchNorm2d sharing its
    parameters and buffers."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats,
            )  # fmt: skip
            new.train(child.training)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            setattr(module, name, new)
        else:
            global_batchnorm(child)
    return module
