"""DCGAN generator and discriminator for square images (grayscale or colour), three ways to
condition.

Both registered designs are one pattern: G maps z to a base_res×base_res feature map (a linear
layer, which equals DCGAN's first 1×1→4×4 transposed conv) and doubles the resolution with
stride-2 4×4 transposed convs; D halves it with stride-2 4×4 convs and ends in a linear layer on
the flattened features (equal to DCGAN's last 4×4 valid conv).

  dcgan28  G: z → 2c×7×7 → c×14×14 → 1×28×28        D: 1×28 → c×14 → 2c×7 → logit
  dcgan64  G: z → 8c×4×4 → 4c×8 → 2c×16 → c×32 → 1×64  D: 1×64 → c×32 → 2c×16 → 4c×8 → 8c×4 → logit
with c = 64 × width. Depth (g_depth, d_depth; 0 is DCGAN): that many more 3×3 stride-1 convs,
each with its norm and activation, at every hidden resolution, keeping the maps' count (as the
"standard CNN" of Miyato et al. 2018 interleaves them). Conditioning:
  none        unconditional.
  concat      G: label embedding concatenated to z; D: a learned H×W label map as a second
              input channel (Mirza & Osindero 2014, the classic cGAN).
  projection  G: class-conditional batch norm; D: logit += <embed(y), sum-pooled features>
              (Miyato & Koyama 2018, "cGANs with Projection Discriminator").
Any conditional D may also carry an auxiliary classifier head (AC-GAN, Odena et al. 2017): a
linear layer on the same flattened features, returned by forward(..., classes=True).
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from fashiongan.config import choices_of
from fashiongan.models.layers import (
    ConditionalBatchNorm2d,
    conv_transpose_as_fold,
    conv_transpose_by_phases,
    embed,
    init_dcgan,
)

CONDITIONINGS = choices_of("model.cond")
D_NORMS = choices_of("model.d_norm")


@dataclass(frozen=True)
class DCGANSpec:
    resolution: int
    base_res: int
    g_mult: tuple[int, ...]  # G feature maps, from base_res upward, in units of c
    d_mult: tuple[int, ...]  # D feature maps, from full resolution downward, in units of c


class Generator(nn.Module):
    """G(z, y) → images float32 B×C×R×R in [-1, 1] (C = channels: 1 gray, 3 colour).
    z: B×z_dim; y: int64 (B,), float (B, n_classes) label weights, or None when unconditional."""

    def __init__(
        self,
        spec: DCGANSpec,
        z_dim: int,
        n_classes: int,
        cond: str,
        width: float,
        embed_dim: int,
        depth: int = 0,
        channels: int = 1,
    ):
        super().__init__()
        c = [max(1, round(64 * width * m)) for m in spec.g_mult]
        self.spec, self.z_dim, self.n_classes, self.cond = spec, z_dim, n_classes, cond
        self.channels = channels
        self.label_embed = nn.Embedding(n_classes, embed_dim) if cond == "concat" else None
        in_dim = z_dim + (embed_dim if cond == "concat" else 0)
        self.fc = nn.Linear(in_dim, c[0] * spec.base_res**2, bias=False)

        def norm(ch: int) -> nn.Module:
            return (
                ConditionalBatchNorm2d(ch, n_classes)
                if cond == "projection"
                else nn.BatchNorm2d(ch)
            )

        self.norms = nn.ModuleList(norm(ch) for ch in c)
        # depth: per resolution, [conv, norm] × depth (empty lists, no weights, at depth 0)
        self.deeper = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleList([nn.Conv2d(ch, ch, 3, 1, 1, bias=False), norm(ch)])
                for _ in range(depth)
            )
            for ch in c
        )
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False) for c_in, c_out in zip(c, c[1:])
        )
        self.to_image = nn.ConvTranspose2d(c[-1], channels, 4, 2, 1)
        init_dcgan(self)

    def _norm_relu(
        self, norm: nn.Module, h: torch.Tensor, y: torch.Tensor | None, inplace: bool
    ) -> torch.Tensor:
        h = norm(h, y, inplace=inplace) if self.cond == "projection" else norm(h)
        return F.relu(h, inplace=inplace)

    def _block(self, i: int, h: torch.Tensor, y: torch.Tensor | None, inplace: bool):
        """Resolution i: its norm and ReLU, then its extra 3×3 layers (depth)."""
        h = self._norm_relu(self.norms[i], h, y, inplace)
        for conv, norm in self.deeper[i]:
            h = self._norm_relu(norm, conv(h), y, inplace)
        return h

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond == "concat":
            z = torch.cat([z, embed(self.label_embed, y).to(z.dtype)], dim=1)
        # without autograd, work in place: on CPU, fresh batch-1000 feature maps cost page
        # faults worth ~14% of a sampling pass
        inplace = not torch.is_grad_enabled()
        h = self.fc(z).view(z.shape[0], -1, self.spec.base_res, self.spec.base_res)
        h = self._block(0, h, y, inplace)
        for i, up in enumerate(self.ups, start=1):
            h = self._block(i, up(h), y, inplace)
        h = self._to_image(h)
        return h.tanh_() if inplace else torch.tanh(h)

    def _to_image(self, h: torch.Tensor) -> torch.Tensor:
        # oneDNN's CPU kernel for this one-output-channel layer is slow. Training: as matmul +
        # col2im the step is ~7% faster at width 0.5. Sampling with fewer than 64 input maps
        # (with 64 oneDNN is the faster one): as matmul + a sum of shifted planes per output
        # phase, 12 ms per 1,000 images at width 0.5 against 25 (col2im) and 48 (oneDNN)
        if (
            h.device.type != "cpu"
            or (not self.training and h.shape[1] >= 64)
            or torch.compiler.is_exporting()  # ONNX: the standard ConvTranspose op
        ):
            return self.to_image(h)
        if not self.training and not torch.is_grad_enabled():
            return conv_transpose_by_phases(h, self.to_image)
        return conv_transpose_as_fold(h, self.to_image)


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """(B,): the std of h over each group of `group` consecutive samples, averaged over channels
    and pixels, repeated for the group's members (Karras et al. 2018, "Progressive Growing of
    GANs": minibatch standard deviation, which lets D see a batch's lack of variety). A batch
    that `group` does not divide uses the largest divisor below it."""
    B = h.shape[0]
    g = min(group, B)
    while B % g:
        g -= 1
    s = h.permute(0, 2, 3, 1).reshape(B // g, g, -1).float()  # no copy for channels-last h
    s = (s - s.mean(1, keepdim=True)).square().mean(1).add(1e-8).sqrt().mean(1)
    return s.repeat_interleave(g).to(h.dtype)


class Discriminator(nn.Module):
    """D(x, y) → raw logits float32 (B,), higher = more real. x: B×C×R×R in [-1, 1].
    With aux_classifier, D(x, y, classes=True) → (logits, class logits B×n_classes)."""

    def __init__(
        self,
        spec: DCGANSpec,
        n_classes: int,
        cond: str,
        width: float,
        d_norm: str,
        use_spectral_norm: bool,
        aux_classifier: bool = False,
        mbstd: int = 0,
        depth: int = 0,
        channels: int = 1,
    ):
        super().__init__()
        c = [max(1, round(64 * width * m)) for m in spec.d_mult]
        self.channels = channels
        self.mbstd = mbstd
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        self.spec, self.n_classes, self.cond = spec, n_classes, cond
        self.label_map = nn.Embedding(n_classes, spec.resolution**2) if cond == "concat" else None
        in_ch = [channels + (cond == "concat")] + c[:-1]
        self.convs = nn.ModuleList(sn(nn.Conv2d(i, o, 4, 2, 1)) for i, o in zip(in_ch, c))
        # DCGAN: no norm on the first layer; BN (if chosen) on the others
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(o) if d_norm == "batch" and k > 0 else nn.Identity()
            for k, o in enumerate(c)
        )
        # depth: after each downsampling conv, [conv, norm] × depth (empty at depth 0)
        self.deeper = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleList(
                    [
                        sn(nn.Conv2d(o, o, 3, 1, 1)),
                        nn.BatchNorm2d(o) if d_norm == "batch" else nn.Identity(),
                    ]
                )
                for _ in range(depth)
            )
            for o in c
        )
        final_res = spec.resolution // 2 ** len(c)
        flat = c[-1] * final_res**2
        self.fc = sn(nn.Linear(flat, 1))
        self.proj = nn.Embedding(n_classes, c[-1]) if cond == "projection" else None
        self.classify = nn.Linear(flat, n_classes) if aux_classifier else None
        # minibatch std: the paper appends it as a constant feature map; D's next layers here are
        # linear, so that map's weights act as one number per output (mbstd_fc), and the
        # features need not be copied into a concatenation
        outs = 1 + (n_classes if aux_classifier else 0)
        self.mbstd_fc = sn(nn.Linear(1, outs, bias=False)) if mbstd else None
        init_dcgan(self)
        if self.proj is not None:
            nn.init.normal_(self.proj.weight, 0.0, 0.02)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, classes: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.cond == "concat":
            side = self.spec.resolution
            x = torch.cat([x, embed(self.label_map, y).view(-1, 1, side, side).to(x.dtype)], 1)
        h = x
        for conv, norm, deeper in zip(self.convs, self.norms, self.deeper):
            h = F.leaky_relu(norm(conv(h)), 0.2)
            for conv3, norm3 in deeper:
                h = F.leaky_relu(norm3(conv3(h)), 0.2)
        flat = h.flatten(1)
        out = self.fc(flat).squeeze(1)
        if self.cond == "projection":
            out = out + (embed(self.proj, y) * h.sum(dim=(2, 3))).sum(1)
        logits = self.classify(flat) if classes else None
        if self.mbstd:  # one number per sample, weighted into the logit and each class logit
            spread = self.mbstd_fc(minibatch_std(h, self.mbstd)[:, None])
            out = out + spread[:, 0]
            logits = None if logits is None else logits + spread[:, 1:]
        return (out, logits) if classes else out
