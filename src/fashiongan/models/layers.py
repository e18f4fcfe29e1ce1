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

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.training:
            scale, shift = embed(self.scale, y), embed(self.shift, y)
            return self.bn(x) * scale[:, :, None, None] + shift[:, :, None, None]
        # inference: the running statistics folded into each sample's scale and shift, so the
        # feature map is read once (one addcmul) instead of three times
        bn = self.bn
        scale = embed(self.scale, y) * torch.rsqrt(bn.running_var + bn.eps)
        shift = embed(self.shift, y) - bn.running_mean * scale
        return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])


def conv_transpose_as_fold(h: torch.Tensor, convt: nn.ConvTranspose2d) -> torch.Tensor:
    """`convt(h)` for a 4×4 stride-2 padding-1 transposed conv, as one matmul and a col2im
    (F.fold). Same weights and result (to float rounding)."""
    B, C, H, W = h.shape
    out_ch = convt.out_channels
    cols = h.flatten(2).transpose(1, 2) @ convt.weight.reshape(C, out_ch * 16)  # B × HW × O·16
    out = F.fold(cols.transpose(1, 2), (2 * H, 2 * W), 4, stride=2, padding=1)
    return out if convt.bias is None else out + convt.bias.view(1, -1, 1, 1)
