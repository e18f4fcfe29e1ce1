"""A self-describing model directory (`fashiongan export --format dir`): what someone needs to
use a generator without its run.

    DIR/model.safetensors   G's (or G_ema's) weights with the run's settings as metadata
    DIR/config.json         format "fashiongan-model": architecture, classes, latent size,
                            training budget, data fingerprint, the weights' SHA-256
    DIR/README.md           the model card: data, recipe, budget, metrics with their provenance
                            and floors, intended use and limits
    DIR/metrics.json        `fashiongan evaluate`'s result, when the run was evaluated

`load_generator(DIR)`, `fashiongan generate|evaluate|serve DIR` read it; nothing in it runs code
when loaded.
"""

import json
import os
from pathlib import Path

from fashiongan._version import __version__
from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_dir, sha256_file
from fashiongan.model_export import export_generator

MODEL_FORMAT = "fashiongan-model"
WEIGHTS = "model.safetensors"
CARD_METRICS = (
    ("fid", "FID", "lower"),
    ("kid", "KID", "lower"),
    ("is", "IS", "higher"),
    ("precision", "precision", "higher"),
    ("recall", "recall", "higher"),
    ("label_accuracy", "label accuracy", "higher"),
    ("near_copies", "near-copy share", "lower"),
)


def is_model_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / WEIGHTS).is_file()


def _describe(state: dict, ema: bool, sha: str) -> dict:
    cfg = state["config"]
    return {
        "format": MODEL_FORMAT,
        "fashiongan": __version__,
        "weights": WEIGHTS,
        "sha256": sha,
        "ema": ema,
        "architecture": cfg["model"],
        "resolution": int(state.get("resolution", 28)),
        "channels": int(state.get("channels", 1)),
        "z_dim": cfg["model"]["z_dim"],
        "conditional": cfg["model"]["cond"] != "none",
        "class_names": list(state["class_names"]),
        "training": {
            "step": int(state["step"]),
            "kimg": round(int(state.get("nimg", 0)) / 1000, 1),
            "data": (cfg["data"].get("data") or "Fashion-MNIST (train split)")
            + (
                f", a class-balanced subset of {n} images"
                if (n := cfg["data"].get("subset"))
                else ""
            ),
            "data_checksum": state.get("data_checksum"),
            "loss": cfg["loss"]["loss"],
            "config": cfg,
        },
    }


def _metrics_section(metrics: dict | None) -> list[str]:
    if metrics is None:
        return [
            "Not evaluated when exported. `fashiongan evaluate DIR` scores it against the real "
            "test split, each metric beside its real-vs-real floor.",
        ]
    p, floors = metrics.get("provenance", {}), metrics.get("floors", {})
    lines = [
        f"From `fashiongan evaluate`: {p.get('n_fake')} generated images against "
        f"{p.get('reference', 'the real ' + str(p.get('split')) + ' split')} "
        f"({p.get('n_real')} images), in the feature space of the evaluator "
        f"`{p.get('evaluator')}` (a Fashion-MNIST classifier shipped with fashiongan, not "
        "ImageNet Inception: these numbers are not comparable with papers' FID). The floor is "
        "the same metric for real images against real images at the same sample size.",
        "",
        "| metric | value | real-vs-real floor | better |",
        "| --- | ---: | ---: | --- |",
    ]
    for key, label, better in CARD_METRICS:
        if isinstance(metrics.get(key), (int, float)):
            floor = floors.get(key)
            shown = f"{floor:.4g}" if isinstance(floor, (int, float)) else "—"
            lines.append(f"| {label} | {metrics[key]:.4g} | {shown} | {better} |")
    lines += ["", f"Evaluated {p.get('time', '?')} with fashiongan {p.get('version', '?')}."]
    return lines


def render_card(info: dict, metrics: dict | None) -> str:
    t, arch = info["training"], info["architecture"]
    classes = ", ".join(info["class_names"])
    colour = "colour" if info["channels"] == 3 else "grayscale"
    cond = f"conditional ({arch['cond']})" if info["conditional"] else "unconditional"
    lines = [
        f"# {arch['model']} generator, {info['resolution']}×{info['resolution']} {colour}",
        "",
        f"A {cond} DCGAN-family generator trained with fashiongan {info['fashiongan']}: "
        f"`load_generator(DIR)`, `fashiongan generate DIR`, `fashiongan serve DIR`.",
        "",
        "## Data",
        "",
        f"- trained on: {t['data']} (checksum `{str(t['data_checksum'])[:16]}`)",
        f"- {len(info['class_names'])} classes: {classes}",
        "",
        "## Recipe and budget",
        "",
        f"- model {arch['model']}, width {arch['width']}, D width {arch.get('d_width')}, "
        f"z_dim {info['z_dim']}, spectral norm {arch.get('spectral_norm')}",
        f"- loss {t['loss']}; every setting is in config.json (`training.config`)",
        f"- {t['step']} steps, {t['kimg']} thousand images seen; "
        f"{'EMA' if info['ema'] else 'raw'} weights",
        f"- weights: `{info['weights']}`, SHA-256 `{info['sha256']}`",
        "",
        "## Metrics",
        "",
        *_metrics_section(metrics),
        "",
        "## Intended use and limits",
        "",
        "- For research, teaching and data-augmentation experiments on small image sets like "
        "its training data; it draws images of those classes only, at this resolution.",
        "- Samples can be near-copies of training images: check `fashiongan evaluate DIR "
        "--metrics memorization` before sharing what it generates.",
        "- A conditional model follows the requested class as often as the label accuracy "
        "above says, not always; classes it learnt less well show in per-class FID.",
        "- Not for identifying people or judging real objects: its images are synthetic and "
        "carry its training data's biases (class balance, photography style).",
    ]
    return "\n".join(lines) + "\n"


def export_model_dir(state: dict, out: str | os.PathLike, ema: bool = True,
                     metrics: dict | None = None) -> Path:  # fmt: skip
    """Write the model directory `out` from a loaded checkpoint `state`; `metrics`: the run's
    eval/metrics.json content, if any. `out` appears whole or not at all."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        used_ema = export_generator(state, tmp / WEIGHTS, ema=ema)
        info = _describe(state, used_ema, sha256_file(tmp / WEIGHTS))
        (tmp / "config.json").write_text(json.dumps(info, indent=2) + "\n")
        if metrics is not None:
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "README.md").write_text(render_card(info, metrics))
    return out


def weights_of(directory: Path) -> Path:
    """The weights file of a model directory, checked against its config.json's SHA-256."""
    directory = Path(directory)
    try:
        info = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise FashionGANError(f"{directory}: no readable config.json ({e})") from None
    if info.get("format") != MODEL_FORMAT:
        raise FashionGANError(
            f"{directory}: config.json is not a fashiongan model description (format "
            f"{info.get('format')!r}); expected one written by `fashiongan export --format dir`"
        )
    weights = directory / WEIGHTS
    if sha256_file(weights) != info.get("sha256"):
        raise FashionGANError(
            f"{weights}: SHA-256 differs from the one in config.json; the weights were changed "
            "or damaged"
        )
    return weights
