"""The evaluator as a feature extractor for torchmetrics and torch-fidelity.

    from torchmetrics.image.fid import FrechetInceptionDistance
    from fashiongan.metrics.extractor import FeatureExtractor
    fid = FrechetInceptionDistance(feature=FeatureExtractor())   # FID in our feature space

    import torch_fidelity
    from fashiongan.metrics.extractor import register_torch_fidelity
    register_torch_fidelity()                                    # name: "fashiongan-fmnist"
    torch_fidelity.calculate_metrics(input1=..., input2=..., fid=True,
                                     feature_extractor="fashiongan-fmnist")

Input conventions, those of both libraries: uint8 in [0, 255] or floating point in [0, 1],
N×C×H×W (N×H×W taken as one channel), any side (resized as `fashiongan evaluate` resizes).
Floating-point input is rounded to uint8 first, so a [0, 1] tensor and its uint8 image give the
same features, and both the same as `fashiongan evaluate` on that image. Three channels for a
grayscale evaluator become luminance (ITU-R 601-2, Pillow's "L"); one channel for a colour
evaluator is repeated.
"""

import torch
import torch.nn as nn

from fashiongan.errors import FashionGANError
from fashiongan.metrics.evaluator import Evaluator, load_evaluator, prepare

TORCH_FIDELITY_NAME = "fashiongan-fmnist"
OUTPUTS = ("features", "logits")
_LUMA = (0.299, 0.587, 0.114)


def to_uint8(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Either library's image batch → uint8 N×channels×H×W as the evaluator takes it."""
    x = images if images.ndim == 4 else images[:, None] if images.ndim == 3 else None
    if x is None or x.shape[1] not in (1, 3, 4):
        raise FashionGANError(
            f"images of shape {tuple(images.shape)}: expected N×C×H×W with C = 1 or 3"
        )
    if x.shape[1] == 4:  # RGBA from an image library: alpha dropped, as our readers do
        x = x[:, :3]
    if x.dtype != torch.uint8:
        if not x.is_floating_point():
            raise FashionGANError(f"images of dtype {x.dtype}: expected uint8 or floats in [0, 1]")
        x = x.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    if x.shape[1] == channels:
        return x
    if channels == 1:
        luma = torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)
        return (x.float() * luma).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, channels, -1, -1)


class FeatureExtractor(nn.Module):
    """The evaluator's penultimate features (`output="features"`, for FID, KID, precision/
    recall) or its class logits (`"logits"`, for the Inception Score) as an nn.Module.
    `evaluator`: a loaded Evaluator, an evaluator directory, or None for the shipped one."""

    def __init__(self, evaluator: Evaluator | str | None = None, output: str = "features"):
        super().__init__()
        if output not in OUTPUTS:
            raise FashionGANError(f"output {output!r}: expected one of {', '.join(OUTPUTS)}")
        ev = evaluator if isinstance(evaluator, Evaluator) else load_evaluator(evaluator)
        self.net, self.output, self.id = ev.net.eval(), output, ev.id
        self.channels, self.size = ev.input["channels"], ev.input["size"]
        # torchmetrics reads num_features rather than running a dummy 299×299 batch
        self.num_features = ev.net.head.in_features if output == "features" else ev.n_classes
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "FeatureExtractor":
        return super().train(False)  # BatchNorm and dropout stay in inference mode

    @torch.no_grad()
    def both(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"features": float32 N×F, "logits": float32 N×n_classes} of either library's batch."""
        device = next(self.net.parameters()).device
        x = prepare(to_uint8(images, self.channels).cpu(), self.size, self.channels)
        features = self.net.features(x.to(device))
        return {"features": features.float(), "logits": self.net.head(features).float()}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.both(images)[self.output]


def register_torch_fidelity(evaluator: Evaluator | str | None = None,
                            name: str = TORCH_FIDELITY_NAME) -> str:  # fmt: skip
    """Register the evaluator with torch-fidelity under `name`: features "features" (FID, KID,
    precision/recall) and "logits" (ISC). Returns the name to pass as `feature_extractor`."""
    try:
        import torch_fidelity
        from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    except ImportError as e:
        raise FashionGANError(f"torch-fidelity is not importable here ({e})") from None
    loaded = evaluator if isinstance(evaluator, Evaluator) else load_evaluator(evaluator)

    class Extractor(FeatureExtractorBase):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            self.inner = FeatureExtractor(loaded)

        @staticmethod
        def get_provided_features_list():
            return OUTPUTS

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "logits" if metric == "isc" else "features"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, loaded.input["size"], loaded.input["size"], dtype=torch.uint8)

        def forward(self, x):
            out = self.inner.both(x)
            return tuple(out[n] for n in self.features_list)

    if name in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY.pop(name)
    torch_fidelity.register_feature_extractor(name, Extractor)
    return name
