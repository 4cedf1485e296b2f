"""Image tensors to PNG files and grids (a few lines of numpy and Pillow, no torchvision), and
the one way plots get matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .fsutil import no_space


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or an ImportError saying what to install."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 't2i[figures]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] floats in [0, 1] -> [N, H, W, C] uint8."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """One [C, H, W] image in [0, 1] -> a grayscale or RGB PIL image."""
    arr = to_uint8(image[None])[0]
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def make_grid(images: torch.Tensor, ncol: int, pad: int = 2, scale: int = 1) -> Image.Image:
    """Tile [N, C, H, W] images into rows of `ncol`, on a white background, each pixel
    repeated `scale` times."""
    n, c, h, w = images.shape
    nrow = -(-n // ncol)
    grid = torch.ones(c, pad + nrow * (h + pad), pad + ncol * (w + pad))
    for i, img in enumerate(images.cpu().float()):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y:y + h, x:x + w] = img
    pil = to_pil(grid)
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST) if scale > 1 else pil


def to_hsv(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hue in degrees [0, 360), saturation and value in [0, 1] of RGB images in [-1, 1]
    (B, 3, H, W)."""
    rgb = ((images.float() + 1) / 2).clamp(0, 1)
    r, g, b = rgb.unbind(1)
    value, _ = rgb.max(1)
    chroma = value - rgb.min(1).values
    safe = chroma.clamp(min=1e-6)
    hue = torch.where(value == r, ((g - b) / safe) % 6,
                      torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    saturation = chroma / value.clamp(min=1e-6)
    return hue % 360, saturation, value


def circular_mean(degrees: torch.Tensor, weight: torch.Tensor, dim) -> torch.Tensor:
    """The weighted mean of angles in degrees over `dim`, on the circle (350 and 10 give 0):
    the mean of hues."""
    angle = torch.deg2rad(degrees)
    y, x = (weight * angle.sin()).sum(dim), (weight * angle.cos()).sum(dim)
    return torch.rad2deg(torch.atan2(y, x)) % 360


def from_hsv(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """The inverse of `to_hsv`: RGB images in [-1, 1] (B, 3, H, W)."""
    chroma = value * saturation
    # Channel n (R 5, G 3, B 1) drops by the chroma where the hue is far from it on the wheel.
    k = torch.stack([(n + hue / 60) % 6 for n in (5, 3, 1)], 1)
    rgb = value[:, None] - chroma[:, None] * torch.minimum(k, 4 - k).clamp(0, 1)
    return rgb * 2 - 1


def seed_rows(images: torch.Tensor, prompts: int) -> torch.Tensor:
    """Images grouped by prompt ([prompt 0 seed 0, prompt 0 seed 1, ...], as `Pipeline` returns
    them) reordered by seed, so a grid with one column per prompt has one row per seed."""
    seeds = len(images) // prompts
    return images.view(prompts, seeds, *images.shape[1:]).transpose(0, 1).reshape(images.shape)


def save_png(image: Image.Image, path: Path) -> None:
    """`image` as a PNG at `path`, through a temporary file renamed over it: a full disk leaves
    no partial PNG behind, and one clear error."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise no_space(e, str(path)) from None


def save_images(images: torch.Tensor, out_dir: Path, num_per_prompt: int) -> list[Path]:
    """One PNG per image, named {prompt_index:03d}_{sample_index:03d}.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p, k = divmod(i, num_per_prompt)
        path = out_dir / f"{p:03d}_{k:03d}.png"
        save_png(to_pil(img), path)
        paths.append(path)
    return paths


def with_title(image: Image.Image, title: str) -> Image.Image:
    """`image` below a white band holding `title` in Pillow's default font."""
    band = 16
    out = Image.new(image.mode, (image.width, image.height + band), "white")
    out.paste(image, (0, band))
    ImageDraw.Draw(out).text((4, 2), title, fill="black")
    return out
