"""The GPU side of the training step: arithmetic precision, the Adam implementation, and a
CUDA graph that replays a whole step. The CPU path uses none of it beyond `make_adam`.

A small GAN's step at batch 64 is hundreds of tiny kernels; on a GPU the time goes to launching
them, not to the arithmetic. `StepGraph` records the step's kernels once and replays them with
one launch. Everything random (the real batch, z, fake labels) is drawn outside the graph into
fixed buffers, so a replayed step computes exactly what the eager step computes on those inputs.
"""

import contextlib
from collections.abc import Callable

import torch

from fashiongan.errors import FashionGANError

# eager steps of each kind (with and without the lazy penalties) run before that kind is recorded:
# cuDNN, cuBLAS and the optimiser's state are set up on a side stream, as CUDA graphs require
GRAPH_WARMUP = 2


def resolve_precision(name: str, device: torch.device) -> str:
    """fp32 | tf32 | bf16 for this device; sets torch's TF32 switches for CUDA."""
    if device.type != "cuda":
        if name in ("tf32", "bf16"):
            raise FashionGANError(
                f"--precision {name} needs a CUDA device (got {device.type}); on CPU the step "
                f"runs in fp32: drop --precision"
            )
        return "fp32"
    precision = "tf32" if name == "auto" else name
    fast = precision != "fp32"  # bf16 autocast leaves some float32 matmuls (losses): TF32 those
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    return precision


def autocast(precision: str, device: torch.device):
    """The context the forward passes run in: bf16 autocast, or nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def adam_kind(name: str, device: torch.device) -> str:
    if name == "auto":
        # CPU too: for the default G, one fused step takes 0.45 ms against 1.7-2.2 foreach
        return "fused" if device.type in ("cuda", "cpu") else "foreach"
    return name


def make_adam(params, lr: float, betas, kind: str, graphed: bool, device: torch.device):
    """Adam as `kind` (foreach | fused). A graphed step needs `capturable` state and a device
    tensor learning rate, which the step reads, so a schedule can change it between replays."""
    lr_value = torch.tensor(lr, device=device) if graphed else lr
    fused = kind == "fused"
    return torch.optim.Adam(
        params,
        lr=lr_value,
        betas=tuple(betas),
        foreach=not fused,
        fused=fused or None,
        capturable=graphed,
    )


def fit_adam(opt: torch.optim.Optimizer, kind: str, graphed: bool) -> None:
    """After load_state_dict: the saved groups replace the optimiser's own flags, so a
    checkpoint from a fused/graphed GPU run loads into a CPU run and back. Put back this run's
    implementation, learning-rate type and the device of each `step` counter."""
    fused = kind == "fused"
    for group in opt.param_groups:
        group.update(foreach=not fused, fused=fused or None, capturable=graphed)
        lr = float(group["lr"])
        device = group["params"][0].device
        group["lr"] = torch.tensor(lr, device=device) if graphed else lr
        for p in group["params"]:
            state = opt.state.get(p)
            if state and "step" in state:
                on_device = fused or graphed
                state["step"] = torch.as_tensor(
                    float(state["step"]),
                    dtype=torch.float32,
                    device=p.device if on_device else "cpu",
                )


def portable_adam_state(opt: torch.optim.Optimizer) -> dict:
    """opt.state_dict() with plain-number learning rates (a graphed run keeps them on the GPU)."""
    state = opt.state_dict()
    for group in state["param_groups"]:
        group["lr"] = float(group["lr"])
    return state


def set_lr(opt: torch.optim.Optimizer, value: float) -> None:
    for group in opt.param_groups:
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(value)  # a graphed step reads this tensor
        else:
            group["lr"] = value


class StepGraph:
    """Replays a training step recorded as CUDA graphs, one per kind of step (`key`, e.g. with
    or without the lazy R1/R2 penalties). `maths(inputs, key)` is the step on fixed input
    tensors; it must draw no random numbers and make no host syncs. `reset()` after anything
    replaces optimiser state (a resume or rollback): the next steps warm up and record afresh."""

    def __init__(self, maths: Callable, optimisers: list[torch.optim.Optimizer]):
        self.maths = maths
        self.optimisers = optimisers
        self.reset()

    def reset(self) -> None:
        self.graphs: dict = {}
        self.seen: dict = {}
        self.inputs: list[torch.Tensor] | None = None

    def _zero_grads(self) -> None:
        for opt in self.optimisers:
            opt.zero_grad(set_to_none=True)

    def __call__(self, inputs: list[torch.Tensor], key) -> None:
        if self.inputs is None:
            self.inputs = [t.clone() for t in inputs]
        for static, value in zip(self.inputs, inputs):
            static.copy_(value)
        graph = self.graphs.get(key)
        if graph is not None:
            graph.replay()
            return
        self.seen[key] = self.seen.get(key, 0) + 1
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            if self.seen[key] <= GRAPH_WARMUP:
                self.maths(self.inputs, key)  # an ordinary eager step
            else:
                graph = torch.cuda.CUDAGraph()
                self._zero_grads()  # gradients are allocated inside the graph's memory pool
                with torch.cuda.graph(graph, stream=side):
                    self.maths(self.inputs, key)
                self.graphs[key] = graph
        torch.cuda.current_stream().wait_stream(side)
        if graph is not None:
            graph.replay()  # recording runs nothing: this is the step
