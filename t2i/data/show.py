"""Look at the data first (`t2i data show`): what a dataset holds — its size, image shape, pixel
statistics, captions and what was skipped reading it — and a grid of its images, each with the
caption training would draw for it."""

from __future__ import annotations

import textwrap
from collections import Counter

import numpy as np
import torch
from PIL import Image, ImageDraw

from .base import ImageDataset


def describe(data: ImageDataset, sample: int = 2000, seed: int = 0) -> dict:
    """Size, shape, pixel mean/std per channel (over up to `sample` images, in [0, 1]), caption
    statistics (captions per image, distinct captions, words per caption, the commonest words),
    classes and skipped images (by reason) of a dataset."""
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:sample]
    images = (data.batch(idx)[0] + 1) / 2
    lists = data.caption_options(range(len(data)))
    distinct = list(dict.fromkeys(c for caps in lists for c in caps))
    words = [len(c.split()) for c in distinct]
    counts = Counter(w.lower().strip(".,") for c in distinct for w in c.split())
    per_image = [len(caps) for caps in lists]
    return {
        "images": len(data), "shape": list(data.shape),
        "pixel_mean": images.mean(dim=(0, 2, 3)).tolist(), "pixel_std": images.std(dim=(0, 2, 3)).tolist(),
        "classes": list(data.classes.names) if data.classes is not None else None,
        "captions_per_image": [min(per_image), float(np.mean(per_image)), max(per_image)],
        "distinct_captions": len(distinct),
        "words_per_caption": [min(words), float(np.mean(words)), max(words)],
        "common_words": counts.most_common(12),
        "skipped": dict(data.skipped or {}),
    }


def format_description(info: dict) -> str:
    """`describe`'s dict as the lines `t2i data show` prints."""
    lo, mean, hi = info["captions_per_image"]
    wlo, wmean, whi = info["words_per_caption"]
    lines = [f"images: {info['images']:,} of shape {tuple(info['shape'])} (C, H, W)",
             "pixel mean / std per channel: " + ", ".join(
                 f"{m:.3f} / {s:.3f}" for m, s in zip(info["pixel_mean"], info["pixel_std"]))]
    if info["classes"]:
        lines.append(f"classes ({len(info['classes'])}): " + ", ".join(info["classes"]))
    lines += [f"captions per image: {lo} to {hi} (mean {mean:.1f}); {info['distinct_captions']:,} distinct",
              f"words per caption: {wlo} to {whi} (mean {wmean:.1f})",
              "commonest words: " + ", ".join(f"{w} ({n})" for w, n in info["common_words"]),
              "skipped while reading: " + (", ".join(f"{n} {why}" for why, n in info["skipped"].items())
                                           or "none")]
    return "\n".join(lines)


def caption_grid(data: ImageDataset, n: int = 24, columns: int = 6, seed: int = 0,
                 cell: int = 112) -> Image.Image:
    """`n` random examples, each scaled to about `cell` pixels with a caption drawn for it the
    way training draws one (random among its captions) beneath."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=gen)[:n]
    images = ((data.batch(idx)[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    captions = data.captions_of(idx, torch.rand(len(idx), generator=gen))
    scale = max(1, cell // max(data.shape[1:]))
    text_h = 40
    rows = -(-len(idx) // columns)
    grid = Image.new("RGB", (columns * (cell + 8), rows * (cell + text_h + 8)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (img, caption) in enumerate(zip(images, captions)):
        arr = img.permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
        x, y = (i % columns) * (cell + 8) + 4, (i // columns) * (cell + text_h + 8) + 4
        grid.paste(pil, (x + (cell - pil.width) // 2, y))
        lines = textwrap.wrap(caption, width=cell // 6)[:3]
        draw.multiline_text((x, y + cell + 2), "\n".join(lines), fill="black", spacing=1)
    return grid
