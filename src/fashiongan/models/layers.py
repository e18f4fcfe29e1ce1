"""Building blocks: DCGAN init, label embeddings (hard or soft labels), conditional batch norm."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def init_dcgan(module: nn.Module) -> None:
    """Radford et al. 2015: conv/linear weights ~ N(0, 0.02), BN scale ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def embed(table: nn.Embedding, y: torch.Tensor) -> torch.Tensor:
    """Rows of `table` for labels y: int64 (B,) picks rows; float (B, n_classes) mixes them
    (one-hot rows give the same result; used to interpolate between classes)."""
    if y.is_floating_point():
        return y.to(table.weight.dtype) @ table.weight
    return table(y)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine; per-class scale and shift instead (Miyato & Koyama
    2018, de Vries et al. 2017). Scale starts at 1 and shift at 0, as plain BN."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(n_classes, channels)
        self.shift = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """inplace (inference only): overwrite x instead of writing a new feature map."""
        if self.training:
            scale, shift = embed(self.scale, y), embed(self.shift, y)
            return self.bn(x) * scale[:, :, None, None] + shift[:, :, None, None]
        # inference: the running statistics folded into each sample's scale and shift, so the
        # feature map is read once (one addcmul) instead of three times
        bn = self.bn
        scale = embed(self.scale, y) * torch.rsqrt(bn.running_var + bn.eps)
        shift = embed(self.shift, y) - bn.running_mean * scale
        scale, shift = scale[:, :, None, None], shift[:, :, None, None]
        if inplace:
            return x.mul_(scale).add_(shift)
        return torch.addcmul(shift, x, scale)


def conv_transpose_as_fold(h: torch.Tensor, convt: nn.ConvTranspose2d) -> torch.Tensor:
    """`convt(h)` for a 4×4 stride-2 padding-1 transposed conv, as one matmul and a col2im
    (F.fold). Same weights and result (to float rounding)."""
    B, C, H, W = h.shape
    out_ch = convt.out_channels
    cols = h.flatten(2).transpose(1, 2) @ convt.weight.reshape(C, out_ch * 16)  # B × HW × O·16
    out = F.fold(cols.transpose(1, 2), (2 * H, 2 * W), 4, stride=2, padding=1)
    return out if convt.bias is None else out + convt.bias.view(1, -1, 1, 1)


# For a 4×4 stride-2 padding-1 transposed conv, output row 2i+p sums two kernel rows ky, taken
# from input rows i+d: p → ((ky, d), (ky, d)). Columns likewise.
_PHASE_TAPS = {0: ((1, 0), (3, -1)), 1: ((0, 1), (2, 0))}


def _from(n: int, d: int) -> slice:  # the input rows i + d that exist, for i in 0..n-1
    return slice(max(d, 0), n + min(d, 0))


def _to(n: int, d: int) -> slice:  # the output rows i they land on
    return slice(max(-d, 0), n + min(-d, 0))


def conv_transpose_by_phases(h: torch.Tensor, convt: nn.ConvTranspose2d) -> torch.Tensor:
    """`convt(h)` for a 4×4 stride-2 padding-1 transposed conv without autograd, for sampling:
    one matmul gives the 16 kernel taps as whole planes, each output phase (row and column
    parity) is the sum of four shifted planes, and one copy interleaves the phases. Faster
    than col2im on CPU for few output maps (it adds whole planes, not patches)."""
    B, C, H, W = h.shape
    out_ch = convt.out_channels
    flat = h.permute(0, 2, 3, 1).reshape(B * H * W, C)  # a view when h is channels-last
    planes = (convt.weight.reshape(C, out_ch * 16).t() @ flat.t()).view(out_ch, 4, 4, B, H, W)
    out = h.new_zeros(2, 2, out_ch, B, H, W)
    for py, rows in _PHASE_TAPS.items():
        for px, cols in _PHASE_TAPS.items():
            for ky, dy in rows:
                for kx, dx in cols:  # output (i, j) += plane (ky, kx) at (i + dy, j + dx)
                    out[py, px, :, :, _to(H, dy), _to(W, dx)] += planes[
                        :, ky, kx, :, _from(H, dy), _from(W, dx)
                    ]
    out = out.permute(3, 2, 4, 0, 5, 1).reshape(B, out_ch, 2 * H, 2 * W)
    return out if convt.bias is None else out.add_(convt.bias.view(1, -1, 1, 1))
