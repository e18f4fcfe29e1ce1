"""ImageNet Inception-v3 features for numbers comparable with papers (`evaluate --features
inception`, the inception extra): the 2015 TensorFlow graph as torch-fidelity ports it, its
weights, its TF1-compatible bilinear resize to 299×299; grayscale images replicated to three
channels, as torch-fidelity and pytorch-fid read a grayscale PNG. FID, KID and precision/recall
use the 2048-d pool features, IS the unbiased 1008-way logits (torch-fidelity's choices).

The weights file is torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`, fetched on
first use into the cache, or read from --inception-weights FILE on a machine without internet.
Either way its SHA-256 must begin with 6726825d — the torch hub naming convention by which both
torch-fidelity and pytorch-fid name the file (the full digest is not published by either; a file
that passes is recorded with its full SHA-256 in the provenance). It is loaded with
weights_only=True before torch-fidelity (whose loader unpickles freely) is handed its path.

On a CPU this network costs ~6 GFLOP per image: 10,000 images take minutes, not seconds. The
real split's features are cached per weights file.
"""

from pathlib import Path

import torch

from fashiongan.checkpoint import serialize
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_write_bytes, sha256_file

WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
WEIGHTS_NAME = WEIGHTS_URL.rsplit("/", 1)[1]
HASH_PREFIX = "6726825d"
FEATURES, LOGITS = "2048", "logits_unbiased"


def _checked(path: Path, prefix: str, where: str) -> str:
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        raise FashionGANError(
            f"{where} {path}: SHA-256 {digest[:16]}… does not begin with {prefix}; it is not the "
            f"standard Inception weights file ({WEIGHTS_NAME})"
        )
    return digest


def weights_file(
    explicit: str | Path | None,
    cache_dir: Path,
    url: str = WEIGHTS_URL,
    prefix: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> tuple[Path, str]:
    """(path, SHA-256) of verified weights: `explicit` (--inception-weights), else the cached
    copy, else downloaded from `url` into cache_dir/inception and verified before it is kept."""
    from fashiongan.data.download import _fetch

    prefix = prefix or HASH_PREFIX
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FashionGANError(f"--inception-weights {path}: no such file")
        return path, _checked(path, prefix, "--inception-weights")
    target = Path(cache_dir) / "inception" / WEIGHTS_NAME
    if target.is_file():
        return target, _checked(target, prefix, "cached")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        _fetch(url, part, timeout, progress)
        digest = _checked(part, prefix, "downloaded")
    except FashionGANError as e:
        part.unlink(missing_ok=True)
        raise FashionGANError(
            f"{e}; on a machine without internet, download {WEIGHTS_URL} elsewhere and pass "
            "--inception-weights FILE"
        ) from None
    part.replace(target)
    return target, digest


def require_torch_fidelity(flag: str = "--features inception"):
    """The torch_fidelity module, or a one-line error naming the extra."""
    try:
        import torch_fidelity
        import torch_fidelity.feature_extractor_inceptionv3  # noqa: F401
    except ImportError as e:
        raise FashionGANError(
            f"{flag} needs torch-fidelity ({e}): pip install 'fashiongan[inception]'"
        ) from None
    return torch_fidelity


class InceptionFeatures:
    """torch-fidelity's Inception-v3 on a verified weights file; `id` names it in caches."""

    def __init__(self, path: Path, sha256: str, device: str | torch.device = "cpu"):
        torch_fidelity = require_torch_fidelity()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:  # refuse anything but tensors before the library unpickles the file freely
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is one line
            raise FashionGANError(f"{path}: not a weights-only state dict ({e})") from None
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", [FEATURES, LOGITS], feature_extractor_weights_path=str(path)
        ).to(device)
        self.device = torch.device(device)
        self.sha256 = sha256
        self.id = f"inception-2015-12-05-{sha256[:12]}"
        self.provenance = {
            "network": "Inception-v3, TensorFlow 2015-12-05 graph (torch-fidelity "
            f"{torch_fidelity.__version__} FeatureExtractorInceptionV3)",
            "weights": str(path),
            "weights_sha256": sha256,
            "input": "uint8 RGB (grayscale replicated to 3 channels), TF1 bilinear resize to 299",
            "features": f"{FEATURES} (FID, KID, precision/recall); {LOGITS} (IS)",
        }

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 100):
        """uint8 N×H×W or N×C×H×W → (features float32 N×2048, logits float32 N×1008)."""
        x = images if images.ndim == 4 else images[:, None]
        feats, logits = [], []
        for chunk in x.split(batch_size):
            rgb = chunk.expand(-1, 3, -1, -1) if chunk.shape[1] == 1 else chunk
            f, lg = self.net(rgb.contiguous().to(self.device))
            feats.append(f.float().cpu())
            logits.append(lg.float().cpu())
        if not feats:
            return torch.zeros(0, 2048), torch.zeros(0, 1008)
        return torch.cat(feats), torch.cat(logits)

    def of_reference(self, reference, cache_dir: Path) -> torch.Tensor:
        """The 2048-d features of a reference FeatureSet: cached when it has a checksum (a real
        split), computed each time when not (a given set)."""
        if not reference.checksum:
            return self.features(reference.images)[0]
        key = f"real-{reference.checksum[:16]}-{len(reference)}"
        return self.cached(reference.images, key, cache_dir)[0]

    def cached(self, images: torch.Tensor, key: str, cache_dir: Path):
        """features() of a real split (or part), cached under cache_dir/eval/<id>/<key>.pt."""
        path = Path(cache_dir) / "eval" / self.id / f"{key}.pt"
        if path.is_file():
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                if saved["features"].shape[0] == len(images):
                    return saved["features"], saved["logits"]
            except Exception:  # noqa: BLE001 - a damaged cache is recomputed, never trusted
                pass
        f, lg = self.features(images)
        atomic_write_bytes(path, serialize({"features": f, "logits": lg}))
        return f, lg
