"""Image encoding: uint8 image arrays → grids, labelled grids, PNG and animated GIF bytes and
files (written atomically). Used by sampling, training's grids, export, reports and serve; it
knows nothing of models.

Images are uint8 N×H×W grayscale or N×3×H×W colour (0 = black background, as in Fashion-MNIST);
a colour grid is an H×W×3 array, as PIL takes it.
"""

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fashiongan.errors import FashionGANError
from fashiongan.fileio import atomic_save, atomic_write_bytes


def grid(
    images: np.ndarray | torch.Tensor, ncol: int = 10, scale: int | None = None
) -> Image.Image:
    """uint8 N×H×W or N×3×H×W (numpy or torch) → a PIL image, ncol images a row, enlarged
    `scale` times (default ×2 for images of 32 px or less). A notebook shows it inline;
    `.save(path)` keeps it."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or not (
        images.ndim == 3 or (images.ndim == 4 and images.shape[1] == 3)
    ):
        raise FashionGANError(
            f"grid takes uint8 N×H×W or N×3×H×W images, got {images.dtype} {tuple(images.shape)}"
        )
    side = images.shape[-1]
    return upscaled(make_grid(images, ncol), display_scale(side) if scale is None else scale)


def make_grid(images: np.ndarray | torch.Tensor, ncol: int, pad: int = 2) -> np.ndarray:
    """uint8 N×H×W (N×3×H×W) → one uint8 H'×W' (H'×W'×3) image, ncol images per row, `pad`
    pixels of gray between."""
    images = np.asarray(images)
    if images.ndim == 4:  # colour: channels last, as PIL takes them
        images = images.transpose(0, 2, 3, 1)
    n, h, w = images.shape[:3]
    nrow = max(1, math.ceil(n / ncol))
    grid = np.full(
        (nrow * (h + pad) + pad, ncol * (w + pad) + pad, *images.shape[3:]), 64, np.uint8
    )
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = images[i]
    return grid


def display_scale(side: int) -> int:
    """Pictures of images of 32 px or less are shown ×2 (grids, walks, reports)."""
    return 2 if side <= 32 else 1


def upscaled(image: np.ndarray, scale: int) -> Image.Image:
    """uint8 H×W, H×W×3 or 3×H×W → a PIL image enlarged `scale` times with nearest-neighbour
    pixels."""
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)  # one colour image as the models give it
    img = Image.fromarray(np.ascontiguousarray(image))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def png_bytes(image: np.ndarray | Image.Image, scale: int = 1) -> bytes:
    img = image if isinstance(image, Image.Image) else upscaled(np.asarray(image), scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def label_rows(
    grid: np.ndarray, names: list[str], cell: int, pad: int = 2, scale: int = 1
) -> Image.Image:
    """A PIL image of `grid` (upscaled by `scale`) with a column of row names on the left."""
    img = upscaled(grid, scale)
    font = ImageFont.load_default()
    margin = max(int(font.getlength(n)) for n in names) + 8
    out = Image.new(img.mode, (img.width + margin, img.height), "white")
    out.paste(img, (margin, 0))
    draw = ImageDraw.Draw(out)
    for r, name in enumerate(names):
        y = (pad + r * (cell + pad)) * scale + (cell * scale) // 2 - 6
        draw.text((4, y), name, fill="black", font=font)
    return out


def save_png(path: str | os.PathLike, image: np.ndarray | Image.Image) -> None:
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    atomic_save(path, lambda f: img.save(f, format="PNG"))


def gif_bytes(frames: list[Image.Image], ms_per_frame: int) -> bytes:
    """An endlessly looping animated GIF."""
    buf = io.BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0
    )
    return buf.getvalue()


def save_gif(path: str | os.PathLike, frames: list[Image.Image], ms_per_frame: int) -> None:
    """An endlessly looping animated GIF, written atomically."""
    atomic_write_bytes(path, gif_bytes(frames, ms_per_frame))


def write_progress_gif(samples_dir: Path) -> Path | None:
    """samples/progress.gif: the fixed-noise grids in step order, one frame each."""
    grids = sorted(samples_dir.glob("grid-*.png"))
    if not grids:
        return None
    out = samples_dir / "progress.gif"
    frames = [Image.open(p) for p in grids]
    mode = "L" if all(f.mode == "L" for f in frames) else "RGB"
    save_gif(out, [f.convert(mode) for f in frames], ms_per_frame=400)
    return out


def encode_interpolation(frames: torch.Tensor, fmt: str) -> bytes:
    """frames W×T×H×W' (or W×T×3×H×W') → PNG strip (a row per walk) or animated GIF (frame t
    shows every walk) bytes. Images of 32 px or less are upscaled ×2, as in the training grids."""
    w, t = frames.shape[:2]
    h = frames.shape[-1]
    scale = display_scale(h)
    if fmt == "png":
        return png_bytes(make_grid(frames.reshape(w * t, *frames.shape[2:]).numpy(), t), scale)
    if fmt == "gif":
        ncol = math.ceil(math.sqrt(w))
        pics = [upscaled(make_grid(frames[:, k].numpy(), ncol), scale) for k in range(t)]
        return gif_bytes(pics + pics[-2:0:-1], ms_per_frame=80)  # there and back
    raise FashionGANError(f"unknown interpolation format {fmt!r}; choose png or gif")


def save_interpolation(path: str | os.PathLike, frames: torch.Tensor, fmt: str) -> None:
    """encode_interpolation(frames, fmt), written atomically to path."""
    atomic_write_bytes(path, encode_interpolation(frames, fmt))
