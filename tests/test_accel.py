"""The GPU options' CPU-visible behaviour: what is refused off a GPU, the Adam implementations'
checkpoints loading into each other, and the pieces the graphed step shares with the eager one.
The graphed step itself needs CUDA: benchmarks/gpu.py checks it against the eager step."""

import pytest
import torch

from fashiongan.checkpoint import load_checkpoint
from fashiongan.errors import FashionGANError
from fashiongan.training.accel import fit_adam, make_adam, portable_adam_state
from fashiongan.training.health import NonFinite
from fashiongan.training.loop import Trainer, train
from fashiongan.training.step import check_graphable, grad_norm
from test_training import tiny


@pytest.mark.parametrize(
    "setting, message",
    [
        (dict(cuda_graph=True), "--cuda-graph needs a CUDA device"),
        (dict(precision="bf16"), "--precision bf16 needs a CUDA device"),
        (dict(precision="tf32"), "--precision tf32 needs a CUDA device"),
    ],
)
def test_gpu_options_are_refused_on_cpu(idx_dir, tmp_path, setting, message):
    with pytest.raises(FashionGANError, match=message):
        Trainer(tiny(idx_dir, steps=1, device="cpu", **setting), tmp_path / "r")


@pytest.mark.parametrize(
    "change, message",
    [
        (("loss", "loss", "wgan-gp"), "random draws inside the step"),
        (("train", "instance_noise", 0.1), "random draws inside the step"),
        (("train", "on_nan", "skip"), "skip an update"),
    ],
)
def test_cuda_graph_refuses_what_a_replay_cannot_repeat(idx_dir, change, message):
    cfg = tiny(idx_dir, steps=1)
    section, key, value = change
    setattr(getattr(cfg, section), key, value)
    with pytest.raises(FashionGANError, match=message):
        check_graphable(cfg, torch.device("cuda"))
    check_graphable(tiny(idx_dir, steps=1), torch.device("cuda"))  # the default recipe is fine


def test_runs_switch_adam_implementation_on_resume(idx_dir, tmp_path):
    # a fused-Adam run (the CUDA default) resumes as foreach (the CPU default) and back
    run = tmp_path / "r"
    train(tiny(idx_dir, steps=3, adam="fused"), run)
    train(tiny(idx_dir, steps=6, adam="foreach"), run, resume=True)
    result = train(tiny(idx_dir, steps=9, adam="fused"), run, resume=True)
    state = load_checkpoint(result.final_checkpoint)
    assert state["step"] == 9
    steps = {float(s["step"]) for s in state["opt_D"]["state"].values()}
    assert steps == {9.0}  # every update was counted, across the three implementations


def test_a_graphed_runs_optimiser_state_loads_on_cpu():
    """A graphed CUDA run saves capturable state; portable_adam_state makes its learning rate a
    number, and fit_adam makes the loaded state this run's own."""
    w = torch.nn.Parameter(torch.randn(4))
    gpu_like = make_adam(
        [w], 1e-2, (0.0, 0.99), "foreach", graphed=False, device=torch.device("cpu")
    )
    w.grad = torch.ones(4)
    gpu_like.step()
    saved = portable_adam_state(gpu_like)
    saved["param_groups"][0].update(capturable=True, fused=True, foreach=False)
    saved["param_groups"][0]["lr"] = torch.tensor(1e-2)  # as an older graphed save might hold
    cpu = make_adam([w], 1e-2, (0.0, 0.99), "foreach", graphed=False, device=torch.device("cpu"))
    cpu.load_state_dict(saved)
    fit_adam(cpu, "foreach", graphed=False)
    group = cpu.param_groups[0]
    assert (group["capturable"], group["fused"], group["foreach"]) == (False, None, True)
    assert isinstance(group["lr"], float) and group["lr"] == pytest.approx(1e-2)
    before = w.detach().clone()
    cpu.step()  # a capturable or tensor-lr foreach step on CPU would raise here
    assert not torch.equal(before, w.detach())
    assert float(cpu.state[w]["step"]) == 2.0
    assert isinstance(portable_adam_state(cpu)["param_groups"][0]["lr"], float)


@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_grad_norm_is_the_total_norm_and_clips_only_when_asked(clip):
    net = torch.nn.Linear(3, 2)
    net(torch.randn(5, 3)).square().sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    expected = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    assert torch.allclose(grad_norm(net.parameters(), clip), expected)
    after = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert torch.allclose(after, expected if clip == 0 else torch.tensor(clip), rtol=1e-4)


def test_nonfinite_takes_the_step_as_a_number_or_a_tensor():
    watch = NonFinite(torch.device("cpu"))
    first = watch.first
    watch.observe(torch.tensor(7), [torch.tensor(1.0), torch.tensor(float("nan"))] * 2)
    watch.observe(9, [torch.tensor(float("inf"))] * 4)
    assert watch.first is first  # updated in place: a recorded CUDA graph keeps its address
    assert watch.report() == (7, ["loss_g", "grad_norm_g"])
