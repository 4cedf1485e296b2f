"""Figures, each written by a command (`t2i figures ...`, `t2i vae figures`, `t2i sample --strip`):
what a run makes, how it gets there, and what the model sees along the way."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ..checkpoint import load_into
from ..data import load_dataset
from ..evaluation.shapes import HEADLINE as TASK_HEADLINE
from ..flow.paths import interpolate
from ..pipeline import Pipeline
from ..utils.images import make_grid, pyplot, with_title


def denoising_strip(pipe: Pipeline, prompts: list[str], steps: Optional[int] = None,
                    columns: int = 8, **kwargs):
    """One row per prompt: the clean image predicted at evenly spaced steps, then the result."""
    steps = steps or pipe.config.sample.steps
    keep = sorted({round(i * (steps - 1) / max(columns - 1, 1)) for i in range(columns)})
    frames = []

    def collect(i, t, x, x1):
        if i in keep:
            frames.append(pipe.decode(x1))
    final = pipe(prompts, steps=steps, callback=collect, **kwargs)
    frames.append(final)
    strip = torch.stack(frames, dim=1)  # (P, frames, C, H, W)
    return make_grid(strip.flatten(0, 1), ncol=strip.shape[1], scale=2)



def class_grid(pipe: Pipeline, seed: int, **kwargs) -> torch.Tensor:
    """One image per class name, from the same starting noise (seed) for every class."""
    return pipe(pipe.default_prompts(), seed=seed, **kwargs)


def seeds_gif(pipe: Pipeline, path: str | Path, seeds: int = 12, frame_ms: int = 500,
              columns: int = 0, **kwargs) -> Path:
    """An animated GIF: the class grid (`columns` per row; 0: all in one row, 5 lays ten classes
    out 2x5), one frame per seed."""
    frames = []
    for seed in range(seeds):
        grid = class_grid(pipe, seed, **kwargs)
        frames.append(with_title(make_grid(grid, ncol=columns or len(grid), scale=3), f"seed {seed}"))
    frames = [f.convert("P") for f in frames]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return Path(path)


def _evenly(items: list, n: int) -> list:
    """At most n of `items`, evenly spaced, always keeping the first and the last."""
    if len(items) <= n:
        return items
    keep = {round(i * (len(items) - 1) / (n - 1)) for i in range(n)}
    return [x for i, x in enumerate(items) if i in keep]


def _stack(rows: list[Image.Image]) -> Image.Image:
    out = Image.new(rows[0].mode, (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    return out


def progression_grid(run_dir: str | Path, max_rows: int = 12) -> Image.Image:
    """The run's EMA sample grids (written every `train.sample_every` steps, same seeds each
    time) stacked top to bottom, each titled with its step: how training got there."""
    grids = sorted(Path(run_dir, "samples").glob("step_*.png"))
    if not grids:
        raise FileNotFoundError(f"no sample grids in {Path(run_dir, 'samples')}: train with "
                                "train.sample_every > 0")
    rows = []
    for g in _evenly(grids, max_rows):
        step = int(re.search(r"step_(\d+)", g.name).group(1))
        img = Image.open(g).convert("L")
        rows.append(with_title(img.crop((0, 0, img.width, img.height // 2)), f"step {step}"))
    return _stack(rows)


def checkpoint_progression(checkpoints: list[Path], seed: int = 0, max_rows: int = 8,
                           **kwargs) -> Image.Image:
    """The Fashion-MNIST latent-diffusion design's progression figure, at any seed: one row per
    checkpoint (at most `max_rows`, evenly spaced; train with train.keep_every=N to keep them),
    one image per class from the same noise, with the EMA weights of that step."""
    rows, pipe = [], None
    for ckpt in _evenly(sorted(checkpoints), max_rows):
        if pipe is None:
            pipe = Pipeline.from_pretrained(ckpt)
        else:  # same config: only the weights change
            load_into(pipe.networks, ckpt)
        grid = class_grid(pipe, seed, **kwargs)
        rows.append(with_title(make_grid(grid, ncol=len(grid), scale=2),
                               f"step {int(ckpt.name.split('_')[1])}, seed {seed}"))
    return _stack(rows)


def noise_levels(config, levels: int = 8, seed: int = 0) -> Image.Image:
    """One test image per class, at t = 1 (data) down to t = 0 (noise) along the training
    interpolation x_t = (1 - t) noise + t x, in pixel space."""
    data = load_dataset(config.data, "test")
    idx = torch.stack([(data.labels == c).nonzero()[0, 0] for c in range(len(data.classes))])
    x, _ = data.batch(idx)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    ts = torch.linspace(1, 0, levels)
    rows = torch.stack([interpolate(x, noise, t.expand(len(x))) for t in ts], dim=1)
    return with_title(make_grid((rows.flatten(0, 1) + 1) / 2, ncol=levels, scale=3),
                      "t = " + ", ".join(f"{t:.2f}" for t in ts.tolist()))


def quality_curve(eval_log: str | Path, path: str | Path) -> Path:
    """Accuracy and FD of the evaluations during training (one JSON line each: minutes, step,
    metrics, real floor) against training CPU minutes: how long is worth training."""
    lines = Path(eval_log).read_text().splitlines() if Path(eval_log).exists() else []
    # The judge's lines (the validation loss has lines of its own, without FD or tasks).
    records = [r for r in (json.loads(line) for line in lines if line.strip()) if "fd" in r or "overall" in r]
    if not records:
        raise FileNotFoundError(f"no evaluations in {eval_log}: train with train.eval_every=N")
    if "overall" in records[0]:
        return task_curves(records, path)
    plt = pyplot()
    minutes = [r["minutes"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    first = ("accuracy", "accuracy (prompted class)") if "accuracy" in records[0] else (
        "group_accuracy", "group accuracy (emoji judge)")
    for ax, key, label in ((axes[0], *first), (axes[1], "fd", "FD (classifier features)")):
        ax.plot(minutes, [r[key] for r in records], "o-", label="generated")
        ax.axhline(records[-1]["real_floor"][key], color="gray", ls="--", label="real images")
        ax.set_xlabel("training CPU minutes")
        ax.set_title(label)
        ax.legend()
    axes[1].set_yscale("log")
    fig.suptitle(f"{records[-1]['n_per_class']} images per class at each point", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def task_curves(records: list[dict], path: str | Path) -> Path:
    """Each GenEval task's accuracy (a shapes run's evaluations) against training CPU minutes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    minutes = [r["minutes"] for r in records]
    for key in TASK_HEADLINE:
        ax.plot(minutes, [r[key] for r in records], "o-" if key == "overall" else ".-",
                lw=2.5 if key == "overall" else 1, label=key.replace("_", " "))
    ax.set_xlabel("training CPU minutes")
    ax.set_ylabel("images that pass")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"GenEval-style tasks, {records[-1]['n_per_class']} images per prompt at each point",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def training_curves(run_dir: str | Path, path: str | Path) -> Path:
    """The run's TensorBoard scalars (loss, grad norm, LR, img/s, eval metrics) as one PNG."""
    plt = pyplot()
    events = EventAccumulator(str(Path(run_dir, "tb")), size_guidance={"scalars": 0})
    events.Reload()
    tags = [t for t in events.Tags()["scalars"] if t.startswith(("train/", "eval/", "val/", "vae/"))
            and "/stats/" not in t]  # the data and velocity statistics stay in TensorBoard
    if not tags:
        raise FileNotFoundError(f"no training scalars in {Path(run_dir, 'tb')}")
    cols = 3
    fig, axes = plt.subplots(-(-len(tags) // cols), cols, figsize=(4 * cols, 2.8 * -(-len(tags) // cols)),
                             squeeze=False)
    for ax, tag in zip(axes.flat, tags):
        points = events.Scalars(tag)
        ax.plot([p.step for p in points], [p.value for p in points], ".-" if len(points) < 30 else "-")
        ax.set_title(tag)
        ax.set_xlabel("step")
        if tag in ("train/loss", "train/grad_norm", "eval/fd"):
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(tags):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def vae_figures(codec, images: torch.Tensor, out: str | Path, psnr: Optional[float] = None,
                levels: int = 6, seed: int = 0, psnr_split: str = "test") -> dict[str, Path]:
    """Four PNGs for a latent codec and a few images in [-1, 1]:
    reconstruction.png  originals (top) and their reconstructions (bottom), PSNR in the title;
    latents.png         one row per image: the image, then each latent channel (min-max scaled);
    latent_noising.png  one row per image: its latent at t = 1 (clean) down to t = 0 (noise),
                        each decoded — what the DiT sees along the way, as images;
    latent_prior.png    latents drawn from the prior N(0, I) (in the scaled space the backbone
                        sees), decoded: what the VAE alone generates, and why a model of the
                        latents is needed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    latents = codec.encode(images).cpu()
    recon = codec.decode(latents).cpu()
    mse = ((recon - images) / 2).pow(2).mean().item()
    title = f"top: original, bottom: reconstruction; PSNR {10 * torch.log10(torch.tensor(1 / mse)):.1f} dB here"
    if psnr is not None:
        title += f", {psnr:.1f} dB on the {psnr_split} set"
    paths = {"reconstruction": out / "reconstruction.png", "latents": out / "latents.png",
             "latent_noising": out / "latent_noising.png", "latent_prior": out / "latent_prior.png"}
    with_title(make_grid((torch.cat([images, recon]) + 1) / 2, ncol=len(images), scale=3),
               title).save(paths["reconstruction"])

    c, h, w = images.shape[1:]
    lo = latents.amin(dim=(2, 3), keepdim=True)
    hi = latents.amax(dim=(2, 3), keepdim=True)
    channels = ((latents - lo) / (hi - lo + 1e-8)).flatten(0, 1)[:, None]  # (B * c_lat, 1, h', w')
    channels = F.interpolate(channels, size=(h, w), mode="nearest").expand(-1, c, -1, -1)
    rows = torch.cat([(images[:, None] + 1) / 2, channels.view(len(images), -1, c, h, w)], dim=1)
    with_title(make_grid(rows.flatten(0, 1), ncol=rows.shape[1], scale=3),
               f"image, then its {latents.shape[1]} latent channels "
               f"({latents.shape[2]}x{latents.shape[3]})").save(paths["latents"])

    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    ts = torch.linspace(1, 0, levels)
    noised = torch.stack([interpolate(latents, noise, t.expand(len(latents))) for t in ts], dim=1)
    decoded = codec.decode(noised.flatten(0, 1)).cpu()
    with_title(make_grid((decoded + 1) / 2, ncol=levels, scale=3),
               "latent at t = " + ", ".join(f"{t:.1f}" for t in ts.tolist()) + ", decoded"
               ).save(paths["latent_noising"])
    prior = torch.randn((2 * levels, *latents.shape[1:]), generator=torch.Generator().manual_seed(seed))
    with_title(make_grid((codec.decode(prior).cpu() + 1) / 2, ncol=levels, scale=3),
               "latents from the prior N(0, I), decoded").save(paths["latent_prior"])
    return paths


