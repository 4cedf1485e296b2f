"""Validation loss: how far a model's velocity is from the true one on images it never trained
on (data.holdout), each with its first caption, at fixed times and with fixed noise, so that
values are comparable from step to step and between runs. Any dataset has it; it is what
training logs where t2i has no judge for the dataset."""

from __future__ import annotations

import torch

from ..flow.paths import interpolate
from ..pipeline import Pipeline

VAL_TIMES = (0.2, 0.35, 0.5, 0.65, 0.8)  # t of x_t = (1 - t) noise + t x


@torch.no_grad()
def validation_loss(pipe: Pipeline, codec, data, batch: int = 64, seed: int = 0) -> dict[str, float]:
    """{"val_loss": the mean over VAL_TIMES, "val_loss_t<t>": the mean squared velocity error at
    each}: `data` an ImageDataset, `codec` the pixel or VAE codec the model works in."""
    noise_gen = torch.Generator().manual_seed(seed)
    errors = {t: 0.0 for t in VAL_TIMES}
    for start in range(0, len(data), batch):
        idx = torch.arange(start, min(start + batch, len(data)))
        x = codec.encode(data.batch(idx)[0]).to(pipe.device).float()
        noise = torch.randn(x.shape, generator=noise_gen).to(pipe.device)
        (tokens, mask), _ = pipe.condition(data.captions_of(idx, torch.zeros(len(idx))), pad=False)
        for t in VAL_TIMES:
            times = torch.full((len(x),), t, device=pipe.device)
            v = pipe.velocity(interpolate(x, noise, times), times, tokens, mask)
            errors[t] += (v - (x - noise)).pow(2).mean().item() * len(x) / len(data)
    return {"val_loss": sum(errors.values()) / len(errors),
            **{f"val_loss_t{t:g}": e for t, e in errors.items()}}
