"""Samplers over a velocity field, and classifier-free guidance.

A sampler sees only `velocity(x, t) -> v` with t a tensor of shape [B]; it carries x from t = 0
(noise) to t = 1 (data) along a grid of times. Objectives join by converting their prediction
to a velocity (objectives.py); guidance joins by wrapping the velocity (`guidance`).

Every Gaussian diffusion path is our straight line scaled (paths.py), so the classic samplers
are grids and steps on our line:
- DDIM (Song et al. 2021, eta = 0) *is* Euler on the grid of the cosine schedule: its update
  z' = alpha' x0 + sigma' noise is, divided by alpha' + sigma', exactly x_t + (t' - t) v. `ddim` is Euler
  on that grid, not a copy of it.
- DDPM ancestral sampling (Ho et al. 2020; DDIM with eta = 1) adds fresh noise each step; it
  reads the clean image x0 = x + (1 - t) v and the noise x - t v off the velocity, so it
  serves every objective too.

`callback(i, t, x, x1)` is called after each step with the step index, the time reached, the
current state and the clean image the last velocity points at (x1 = x + (1 - t) v, where the
straight line from x would land at t = 1): the progressive view of a demo.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from .paths import time_grid, vp

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None]


def _t(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.float32)


@torch.no_grad()
def euler(velocity: Velocity, x: torch.Tensor, steps: int, callback: Optional[Callback] = None,
          grid: Optional[Sequence[float]] = None) -> torch.Tensor:
    """First-order: one velocity evaluation per step (uniform grid unless `grid` is given)."""
    grid = grid or time_grid(steps)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        v = velocity(x, _t(x, t))
        x1 = x + (1 - t) * v  # where this velocity leads at t = 1
        x = x + (t_next - t) * v  # Euler step
        if callback is not None:
            callback(i, t_next, x, x1)
    return x


@torch.no_grad()
def heun(velocity: Velocity, x: torch.Tensor, steps: int, callback: Optional[Callback] = None,
         grid: Optional[Sequence[float]] = None) -> torch.Tensor:
    """Second-order (Karras et al. 2022, Alg. 1): an Euler predictor, then the average of the
    slopes at both ends. The last step, which reaches t = 1, stays Euler as in EDM, since a
    clean-image model's velocity is undefined there. 2 * steps - 1 evaluations."""
    grid = grid or time_grid(steps)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        v = velocity(x, _t(x, t))
        x1 = x + (1 - t) * v
        x_pred = x + (t_next - t) * v  # Euler predictor
        if i < steps - 1:
            v_next = velocity(x_pred, _t(x, t_next))
            x = x + (t_next - t) * 0.5 * (v + v_next)  # trapezoidal corrector
        else:
            x = x_pred
        if callback is not None:
            callback(i, t_next, x, x1)
    return x


@torch.no_grad()
def ddpm(velocity: Velocity, x: torch.Tensor, steps: int, callback: Optional[Callback] = None,
         grid: Optional[Sequence[float]] = None,
         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Ancestral sampling: each step draws z' from the posterior q(z' | z, x0) of the
    variance-preserving path, with x0 and the noise read off the velocity (DDIM's update with
    eta = 1). Fresh noise comes from `generator` (on the CPU, so a seed means the same images on
    any device)."""
    grid = grid or time_grid(steps, "cosine")
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        v = velocity(x, _t(x, t))
        x0, noise = x + (1 - t) * v, x - t * v  # the line's endpoints as the model sees them
        (a, s, _), (a2, s2, r2) = vp(t), vp(t_next)
        # Posterior std (DDIM eq. 16, eta = 1) in VP terms: (s2 / s) sqrt(1 - a^2 / a2^2).
        c = s2 / s * math.sqrt(max(0.0, 1 - (a / a2) ** 2)) if s > 0 and a2 > 0 else 0.0
        fresh = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        z = a2 * x0 + math.sqrt(max(0.0, s2 ** 2 - c ** 2)) * noise + c * fresh
        x = r2 * z  # back onto the line
        if callback is not None:
            callback(i, t_next, x, x0)
    return x


@torch.no_grad()
def fewstep(average: Callable[..., torch.Tensor], x: torch.Tensor, steps: int,
            callback: Optional[Callback] = None,
            grid: Optional[Sequence[float]] = None) -> torch.Tensor:
    """The few-step rule x_s = x_t + (s - t) u(x_t, t, s) of a model that predicts the average
    velocity over an interval (fewstep.py: MeanFlow, shortcut models): `average(x, t, s)`. Each
    step follows the model's whole ODE segment, so 1 step goes from noise to data."""
    grid = grid or time_grid(steps)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        u = average(x, _t(x, t), _t(x, t_next))
        x1 = x + (1 - t) * u  # the image this step's average velocity points at
        x = x + (t_next - t) * u
        if callback is not None:
            callback(i, t_next, x, x1)
    return x


# name -> (solver, time spacing)
SAMPLERS = {"euler": (euler, "uniform"), "heun": (heun, "uniform"),
            "ddim": (euler, "cosine"), "ddpm": (ddpm, "cosine"), "fewstep": (fewstep, "uniform")}


def get_sampler(name: str):
    """`solve(velocity, x, steps, callback=None, t_start=0.0, generator=None, t_end=1.0,
    shift=1.0)` for a sampler name. `t_start` > 0 starts just off pure noise (noise-prediction
    models cannot tell the velocity at t = 0); `t_end` < 1 stops short of the data (with that
    much noise left); `shift` > 1 puts more of the steps near the noise (`paths.time_grid`)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; one of {sorted(SAMPLERS)}")
    fn, spacing = SAMPLERS[name]

    def solve(velocity: Velocity, x: torch.Tensor, steps: int, callback: Optional[Callback] = None,
              t_start: float = 0.0, generator: Optional[torch.Generator] = None,
              t_end: float = 1.0, shift: float = 1.0) -> torch.Tensor:
        grid = time_grid(steps, spacing, t_start, t_end, shift)
        if fn is ddpm:
            return ddpm(velocity, x, steps, callback, grid, generator)
        return fn(velocity, x, steps, callback, grid)
    return solve


def clip_x0(velocity: Velocity, low: float = -1.0, high: float = 1.0) -> Velocity:
    """The velocity toward the model's clean image clipped to the data range: x0 = x + (1 - t) v
    is clamped and v recomputed as (x0 - x) / (1 - t), so the implied noise follows x0. This is
    DDPM's `clip_denoised` (Ho et al. 2020; diffusers' `clip_sample`): a noise-predicting model
    reads x0 = (x - (1 - t) eps) / t, which near pure noise amplifies every error by 1 / t."""
    def clipped(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = t.view(-1, *([1] * (x.dim() - 1)))
        x0 = (x + (1 - tt) * velocity(x, t)).clamp(low, high)
        return (x0 - x) / (1 - tt).clamp(min=1e-4)
    return clipped


def guidance(velocity: Callable[..., torch.Tensor], cond: tuple[torch.Tensor, ...],
             null: tuple[torch.Tensor, ...], scale: float,
             interval: tuple[float, float] = (0.0, 1.0)) -> Velocity:
    """Classifier-free guidance: v = v_uncond + scale * (v_cond - v_uncond).

    `velocity(x, t, *cond)` is the conditional model (a few-step model's average velocity takes
    the interval's end s last: the guided field is then called as (x, t, s)); `null` holds the
    unconditional inputs,
    shaped like `cond` (the caller pads text to one length), and both halves run as one doubled
    batch. At scale 1 guidance is off and the unconditional pass is skipped entirely.

    `interval` = (start, end): guide only while start <= t < end, elsewhere the conditional
    velocity alone (Kynkäänniemi et al. 2024, "Applying guidance in a limited interval"). Near
    pure noise guidance pulls every sample of a prompt toward one mode (the samples stop
    varying); near the data it only sharpens and saturates. Outside the interval the
    unconditional pass is skipped, so a limited interval is also cheaper."""
    start, end = interval
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"the guidance interval must satisfy 0 <= start <= end <= 1, got {interval}")
    if scale == 1.0 or start == end:
        return lambda x, t, *s: velocity(x, t, *cond, *s)
    both = [torch.cat([c, n.to(c.dtype)]) for c, n in zip(cond, null)]

    def guided(x: torch.Tensor, t: torch.Tensor, *s: torch.Tensor) -> torch.Tensor:
        inside = (t >= start) & (t < end)
        if not inside.any():
            return velocity(x, t, *cond, *s)
        v_cond, v_uncond = velocity(torch.cat([x, x]), torch.cat([t, t]), *both,
                                    *(torch.cat([e, e]) for e in s)).chunk(2)
        v = v_uncond + scale * (v_cond - v_uncond)
        return torch.where(inside.view(-1, *[1] * (x.dim() - 1)), v, v_cond)
    return guided
