"""The named recipes: src/fashiongan/configs/NAME.json, each a partial RunConfig and a
description (`fashiongan presets` lists them)."""

import json
from importlib import resources

from fashiongan.errors import FashionGANError


def preset_names() -> list[str]:
    files = resources.files("fashiongan").joinpath("configs").iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def load_preset(name: str) -> dict:
    """The nested dict of a named preset (src/fashiongan/configs/NAME.json)."""
    if name not in preset_names():
        raise FashionGANError(
            f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}"
        )
    text = resources.files("fashiongan").joinpath("configs", f"{name}.json").read_text()
    d = json.loads(text)
    d.pop("description", None)
    return d


def preset_description(name: str) -> str:
    text = resources.files("fashiongan").joinpath("configs", f"{name}.json").read_text()
    return json.loads(text).get("description", "")
