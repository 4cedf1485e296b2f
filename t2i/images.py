"""Image tensors to PNG files and grids (a few lines of numpy and Pillow, no torchvision), and
the one way plots get matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


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


def seed_rows(images: torch.Tensor, prompts: int) -> torch.Tensor:
    """Images grouped by prompt ([prompt 0 seed 0, prompt 0 seed 1, ...], as `Pipeline` returns
    them) reordered by seed, so a grid with one column per prompt has one row per seed."""
    seeds = len(images) // prompts
    return images.view(prompts, seeds, *images.shape[1:]).transpose(0, 1).reshape(images.shape)


def save_images(images: torch.Tensor, out_dir: Path, num_per_prompt: int) -> list[Path]:
    """One PNG per image, named {prompt_index:03d}_{sample_index:03d}.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p, k = divmod(i, num_per_prompt)
        path = out_dir / f"{p:03d}_{k:03d}.png"
        to_pil(img).save(path)
        paths.append(path)
    return paths


def with_title(image: Image.Image, title: str) -> Image.Image:
    """`image` below a white band holding `title` in Pillow's default font."""
    band = 16
    out = Image.new(image.mode, (image.width, image.height + band), "white")
    out.paste(image, (0, band))
    ImageDraw.Draw(out).text((4, 2), title, fill="black")
    return out
