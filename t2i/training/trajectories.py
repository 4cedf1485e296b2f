"""Teacher trajectories for few-step distillation (`objective.trajectories=N`).

A shortcut model learns a step of length 1/n from two of its own half steps, so its one-step
jump rests on a chain (1 step from its 2-step jumps, those from its 4-step jumps, those from
the teacher's velocity), each link adding its error. Here the teacher is also run once, ahead,
on N (caption, noise) pairs: its guided Euler path with 2 x max(step_grid) steps is kept, and
for every step a sampler with n steps (n in the grid) takes from one of those paths the target
is exact — the teacher's own displacement over it, (x_b - x_a) * n. A share of each batch
(`objective.trajectory_share`) trains on such steps beside the objective's own rows (Luhman &
Luhman 2021's knowledge distillation, extended to every step of the grid).

The paths are built inside the timed loop, at the first step (their cost is part of the
budget), from a generator seeded by train.seed: every DDP rank and every resume builds the
same ones. Rows are drawn from the global RNG, which all ranks share (train.py's module doc).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import torch
from tqdm.auto import tqdm

from ..flow.fewstep import draw_levels
from ..flow.samplers import euler, guidance

log = logging.getLogger(__name__)


@dataclass
class Trajectories:
    """N teacher paths: example `idx` (whose caption `u` chose), `states` [N, S + 1, ...] at the
    times k / S on the device; `grid` the step counts (each divides S); `share` of a batch."""

    idx: torch.Tensor
    u: torch.Tensor
    states: torch.Tensor
    grid: tuple[int, ...]
    share: float

    @classmethod
    @torch.no_grad()
    def build(cls, teacher, data, n: int, grid: tuple[int, ...], scale: float,
              interval: tuple[float, float], share: float, seed: int, progress: bool = False,
              chunk: int = 256) -> "Trajectories":
        """Run `teacher` (a Pipeline) on n random (example, caption) pairs, guided at `scale`
        within `interval`, with 2 x max(grid) Euler steps, keeping every state."""
        steps = 2 * max(grid)
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(len(data), (n,), generator=g)
        u = torch.rand(n, generator=g)
        noise = torch.randn(n, *teacher.codec.latent_shape, generator=g)
        captions = data.captions_of(idx, u)
        paths = []
        for a in tqdm(range(0, n, chunk), desc="teacher trajectories", disable=not progress):
            cond, null = teacher.condition(captions[a:a + chunk])
            x = noise[a:a + chunk].to(teacher.device)
            path = [x]
            euler(guidance(teacher.velocity, cond, null, scale, interval), x, steps,
                  callback=lambda i, t, x, x1: path.append(x))
            paths.append(torch.stack(path, 1).float())
        log.info("%d teacher trajectories of %d steps (guidance %g in [%g, %g))", n, steps, scale, *interval)
        return cls(idx, u, torch.cat(paths), tuple(grid), share)

    def draw(self, global_batch: int) -> Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The paths, step counts and step indices of the last round(share x global_batch) rows of
        a global batch (the same draw on every rank), or None for none."""
        m = round(self.share * global_batch)
        if m == 0:
            return None
        j = torch.randint(len(self.idx), (m,))
        counts, k = draw_levels(m, self.grid)
        return j, counts.long(), k.long()

    def steps(self, j: torch.Tensor, counts: torch.Tensor, k: torch.Tensor):
        """(x_t, t, s, target) of step k of an n-step sampler along paths j: the teacher's state
        at t = k / n and its average velocity to s = (k + 1) / n."""
        S = self.states.shape[1] - 1
        a, b = k * S // counts, (k + 1) * S // counts
        j, a, b = (v.to(self.states.device) for v in (j, a, b))
        x_a, x_b = self.states[j, a], self.states[j, b]
        n = counts.to(self.states.device, torch.float32)
        t, s = k.to(n) / n, (k + 1).to(n) / n
        return x_a, t, s, (x_b - x_a) * n.view(-1, *[1] * (x_a.dim() - 1))

    def apply(self, draw, global_batch: int, part: slice, x_t, t, s, drop):
        """Put the drawn steps into this rank's rows `part` of the global batch (its last rows):
        their x_t, t, s, the condition kept; returns those and (rows, target) of the known rows,
        None where this rank holds none of them."""
        j, counts, k = draw
        first = global_batch - len(j)
        pos = torch.arange(global_batch)[part] - first
        here = pos >= 0
        if not here.any():
            return x_t, t, s, drop, None
        rows = here.to(x_t.device)
        x_a, t_a, s_a, target = self.steps(*(v[pos[here]] for v in (j, counts, k)))
        x_t, t, s, drop = x_t.clone(), t.clone(), s.clone(), drop.clone()
        x_t[rows], t[rows], s[rows], drop[rows] = x_a.to(x_t.dtype), t_a.to(t.dtype), s_a.to(s.dtype), False
        return x_t, t, s, drop, (rows, target)
