"""ODE samplers over a velocity field, and classifier-free guidance.

A sampler sees only `velocity(x, t) -> v` with t a tensor of shape [B]; it integrates
dx/dt = v from t = 0 (noise) to t = 1 (data) on a uniform grid. Objectives join by converting
their prediction to a velocity (objectives.py); guidance joins by wrapping the velocity (`cfg`).

`callback(i, t, x, x1)` is called after each step with the step index, the time reached, the
current state and the clean image the last velocity points at (x1 = x + (1 - t) v, where the
straight line from x would land at t = 1): the progressive view of a demo.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .text import pad_tokens

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None]


def _t(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.float32)


@torch.no_grad()
def euler(velocity: Velocity, x: torch.Tensor, steps: int,
          callback: Optional[Callback] = None) -> torch.Tensor:
    """First-order: one velocity evaluation per step."""
    grid = torch.linspace(0, 1, steps + 1).tolist()
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        v = velocity(x, _t(x, t))
        x1 = x + (1 - t) * v  # where this velocity leads at t = 1
        x = x + (t_next - t) * v  # Euler step
        if callback is not None:
            callback(i, t_next, x, x1)
    return x


@torch.no_grad()
def heun(velocity: Velocity, x: torch.Tensor, steps: int,
         callback: Optional[Callback] = None) -> torch.Tensor:
    """Second-order (Karras et al. 2022, Alg. 1): an Euler predictor, then the average of the
    slopes at both ends. The last step, which reaches t = 1, stays Euler as in EDM, since a
    clean-image model's velocity is undefined there. 2 * steps - 1 evaluations."""
    grid = torch.linspace(0, 1, steps + 1).tolist()
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


SAMPLERS = {"euler": euler, "heun": heun}


def get_sampler(name: str):
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def cfg(velocity: Callable[..., torch.Tensor], cond: tuple[torch.Tensor, torch.Tensor],
        null: tuple[torch.Tensor, torch.Tensor], scale: float) -> Velocity:
    """Classifier-free guidance: v = v_uncond + scale * (v_cond - v_uncond).

    `velocity(x, t, tokens, mask)` is the conditional model; the conditional and unconditional
    halves run as one doubled batch. At scale 1 guidance is off and the unconditional pass is
    skipped entirely."""
    tokens, mask = cond
    if scale == 1.0:
        return lambda x, t: velocity(x, t, tokens, mask)
    # One batch needs one length: pad the shorter sequences with masked tokens.
    length = max(tokens.shape[1], null[0].shape[1])
    tokens, mask = pad_tokens(tokens, mask, length)
    null_tokens, null_mask = pad_tokens(*null, length)
    both_tokens = torch.cat([tokens, null_tokens.to(tokens.dtype)])
    both_mask = torch.cat([mask, null_mask])

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_cond, v_uncond = velocity(torch.cat([x, x]), torch.cat([t, t]),
                                    both_tokens, both_mask).chunk(2)
        return v_uncond + scale * (v_cond - v_uncond)
    return guided
