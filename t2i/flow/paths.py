"""The noise path: one home for the line from noise to data, the cosine schedule on it, and the
time grids samplers walk. Objectives and samplers both import it; neither imports the other.

Convention (docs/concepts/how-it-works.md): t = 0 is pure noise, t = 1 is data,
x_t = (1 - t) * noise + t * x, and the velocity is v = dx_t/dt = x - noise.

Every Gaussian diffusion path z = alpha x + sigma noise is this line scaled: z = (alpha + sigma)
x_t at t = alpha / (alpha + sigma) (Kingma et al. 2021; Karras et al. 2022, sec. 4). Read back
from t alone on the variance-preserving circle (alpha^2 + sigma^2 = 1): alpha = t / h,
sigma = (1 - t) / h with h = sqrt(t^2 + (1 - t)^2), and z = x_t / h (`vp`).
"""

from __future__ import annotations

import math

import torch


def broadcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample times [B] shaped to multiply tensors like `like` [B, ...], in its dtype."""
    return t.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def interpolate(x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t on the straight line from noise (t = 0) to data (t = 1)."""
    t = t.view(-1, *([1] * (x.dim() - 1)))
    return (1 - t) * noise + t * x


TIME_SAMPLINGS = ("logit_normal", "uniform")


def sample_times(n: int, sampling: str = "logit_normal", mean: float = 0.0, std: float = 1.0,
                 device=None) -> torch.Tensor:
    """n training times in (0, 1): uniform, or logit-normal (Esser et al. 2024, SD3), which
    spends more training on the middle of the path where the velocity is hardest."""
    if sampling == "uniform":
        return torch.rand(n, device=device)
    if sampling != "logit_normal":
        raise ValueError(f"unknown t_sampling {sampling!r}; one of {list(TIME_SAMPLINGS)}")
    return torch.sigmoid(mean + std * torch.randn(n, device=device))


def vp(t):
    """(alpha, sigma, h) of time t on the variance-preserving path: alpha = t / h,
    sigma = (1 - t) / h, h = sqrt(t^2 + (1 - t)^2), so that z = x_t / h. `t` is a float (the
    samplers' grid) or a tensor already broadcast against the images (the objectives)."""
    if isinstance(t, torch.Tensor):
        h = torch.sqrt(t ** 2 + (1 - t) ** 2)
    else:
        h = math.hypot(t, 1 - t)
    return t / h, (1 - t) / h, h


def cosine_t(s):
    """The time on our line of noise level s in [0, 1] of the cosine schedule (Nichol &
    Dhariwal 2021: alpha = cos(pi s / 2), sigma = sin(pi s / 2)); `s` a float or a tensor."""
    if isinstance(s, torch.Tensor):
        a, b = torch.cos(math.pi / 2 * s), torch.sin(math.pi / 2 * s)
    else:
        a, b = math.cos(math.pi * s / 2), math.sin(math.pi * s / 2)
    return a / (a + b)


TIME_SPACINGS = ("cosine", "uniform")


def shift_time(t, shift: float):
    """t moved toward the noise by `shift` (SD3's resolution shift, Esser et al. 2024): the noise
    level 1 - t becomes shift (1 - t) / (1 + (shift - 1)(1 - t)); 0 and 1 stay put, 1 is no
    shift. Images of large flat regions (shapes on white) keep their layout readable under much
    noise, so what they show is decided close to t = 0: a shift > 1 spends the steps there."""
    return t / (t + shift * (1 - t))


def check_shift(shift: float) -> float:
    """`shift`, if it is a time shift `shift_time` can apply (finite, > 0); else a ValueError."""
    if not math.isfinite(shift) or shift <= 0:
        raise ValueError(f"the time shift must be a finite number > 0, got {shift!r}")
    return shift


def time_grid(steps: int, spacing: str = "uniform", t_start: float = 0.0,
              t_end: float = 1.0, shift: float = 1.0) -> list[float]:
    """steps + 1 times from t_start to t_end: uniform in t, or uniform in the noise level of the
    cosine schedule, as DDPM and DDIM step (in t, steps are then a little longer at both ends
    than mid-way); then, with `shift` != 1, each time's place between t_start and t_end moved
    toward the noise by `shift_time` (the ends stay)."""
    check_shift(shift)
    if spacing == "uniform":
        grid = torch.linspace(t_start, t_end, steps + 1).tolist()
    elif spacing == "cosine":
        def level(t):  # the cosine schedule's noise level at time t
            return 2 / math.pi * math.atan2(1 - t, t)
        grid = [cosine_t(s) for s in torch.linspace(level(t_start), level(t_end), steps + 1).tolist()]
    else:
        raise ValueError(f"unknown time spacing {spacing!r}; one of {list(TIME_SPACINGS)}")
    if shift == 1.0:
        return grid
    span = t_end - t_start
    return [t_start + span * shift_time((t - t_start) / span, shift) for t in grid]
