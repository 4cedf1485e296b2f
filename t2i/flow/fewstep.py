"""Few-step objectives: the model predicts the *average* velocity over an interval,
u(x_t, t, s) = 1 / (s - t) * integral from t to s of v(x_tau, tau) dtau, so that one step
x_s = x_t + (s - t) u(x_t, t, s) follows the whole ODE from t to s (`samplers.fewstep`). At s = t
the average is the instantaneous velocity: a few-step model is also a flow model.

Two ways to learn u without ever integrating the ODE during training:
- MeanFlow (Geng et al. 2025): differentiating (s - t) u = integral of v along the path with
  respect to t gives the identity u = v + (s - t) du/dt, where du/dt = J_x u . v + du/dt
  (partial) is one Jacobian-vector product with tangent (v, 1, 0) over (x, t, s). The target
  v + (s - t) du/dt is held fixed (stop-gradient).
- Shortcut models (Frans et al. 2025): two half steps make one step, so the target of a step
  of length d is the mean of the model's own two steps of length d / 2 (no gradient); the
  smallest steps fall back to the instantaneous velocity. No JVP: three forward passes.

Both follow a velocity field v. From data alone it is x - noise (conditional flow matching);
guidance can be folded into it (`fold_guidance`: MeanFlow's training-time CFG), so a guided image
costs one network evaluation per step; and when a flow checkpoint is distilled, v is that
teacher's guided velocity (deterministic, hence a lower-variance target than x - noise).

Convention as everywhere (paths.py): t = 0 noise, t = 1 data, intervals run t -> s with s >= t.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Protocol

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from .paths import TIME_SAMPLINGS, broadcast, sample_times

log = logging.getLogger(__name__)

FD_EPS = 1e-3  # the finite-difference step of the JVP fallback (fp32)


class TwoTimeModel(Protocol):
    """What a few-step loss needs from the trainer: the average velocity with gradients,
    `no_grad` without (for the batch's `rows` only, if given), and `jvp` (the average velocity
    with gradients and its time derivative along `v`, without)."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor: ...

    def no_grad(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                rows: Optional[torch.Tensor] = None) -> torch.Tensor: ...

    def jvp(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
            v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


_warned = set()


def jvp(fn: Callable[..., torch.Tensor], primals: tuple[torch.Tensor, ...],
        tangents: tuple[torch.Tensor, ...], separate: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(fn(*primals), its directional derivative along `tangents`): forward-mode AD
    (`torch.func.jvp`), the primal output keeping its gradient graph for the loss. Fused SDPA
    kernels (CPU flash attention, CUDA flash / memory-efficient / cuDNN) have no forward-mode AD,
    so the JVP pass runs the math kernel. With `separate` (the default on CUDA) the primal that
    carries the gradient is an ordinary forward pass of its own and the JVP pass keeps no graph:
    one more forward, but the backward runs the fused kernels — and backpropagating through the
    math kernel's JVP pass fails under CUDA bf16 autocast (torch 2.11: its safe-softmax backward
    gets an fp32 gradient for a bf16 input). Where an operation still has no forward-mode AD
    (some backbones' layers), a forward finite difference stands in, with a warning: fine in
    fp32, coarse in bf16."""
    if separate is None:
        separate = primals[0].device.type == "cuda"
    try:
        if separate:
            out = fn(*primals)
            with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
                _, tangent = torch.func.jvp(fn, primals, tangents)
            return out, tangent
        with sdpa_kernel(SDPBackend.MATH):
            out, tangent = torch.func.jvp(fn, primals, tangents)
        return out, tangent.detach()
    except NotImplementedError as e:
        if "forward AD" not in str(e):
            raise
        if "fd" not in _warned:
            _warned.add("fd")
            log.warning("forward-mode AD is not available for this model (%s); the JVP uses a "
                        "finite difference", str(e).splitlines()[0][:200])
        return finite_difference_jvp(fn, primals, tangents)


def finite_difference_jvp(fn, primals, tangents, eps: float = FD_EPS):
    """The JVP as (fn(p + eps * tangent) - fn(p)) / eps; the primal keeps its gradient graph."""
    out = fn(*primals)
    with torch.no_grad():
        ahead = fn(*(p + eps * d for p, d in zip(primals, tangents)))
    dtype = torch.promote_types(out.dtype, torch.float32)  # a bf16 difference would be noise
    return out, (ahead.to(dtype) - out.detach().to(dtype)) / eps


def fold_guidance(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float,
                  use: torch.Tensor) -> torch.Tensor:
    """The guided velocity v_uncond + scale * (v_cond - v_uncond) where `use` (per sample),
    v_cond elsewhere. At scale 1 it is v_cond: the conditional target."""
    guided = v_uncond + scale * (v_cond - v_uncond)
    return torch.where(use.view(-1, *[1] * (v_cond.dim() - 1)), guided, v_cond)


def adaptive_mse(pred: torch.Tensor, target: torch.Tensor, p: float, c: float = 1e-3) -> torch.Tensor:
    """Mean over samples of w * ||pred - target||^2 (mean over elements) with the weight
    w = 1 / (||.||^2 + c)^p held fixed (MeanFlow's adaptive weighting): p = 0 is plain MSE, p = 1
    makes every sample count about equally however large its error, which keeps the rare
    huge-error samples (long intervals early on) from dominating."""
    err = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    if p == 0:
        return err.mean()
    return (err / (err.detach() + c).pow(p)).mean()


def with_known(target: torch.Tensor, known: Optional[tuple]) -> torch.Tensor:
    """`target` with the rows whose target is known ahead (`known` = (rows, values), as
    trajectories.py gives them) replaced by those values."""
    if known is None:
        return target
    rows, values = known
    target = target.clone()
    target[rows] = values.to(target.dtype)
    return target


def draw_levels(n: int, step_counts: tuple[int, ...], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """n step counts drawn uniformly from `step_counts` (a count listed twice is drawn twice as
    often: the list weights the levels) and for each a step index k < count, uniformly; both
    float. The one draw of the self-consistency rows (grid_steps) and the teacher-path rows."""
    counts = torch.tensor(step_counts, device=device, dtype=torch.float32)
    steps = counts[torch.randint(len(step_counts), (n,), device=device)]
    return steps, torch.floor(torch.rand(n, device=device) * steps)


def grid_steps(n: int, step_counts: tuple[int, ...], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """n intervals (t, s) that the few-step sampler takes: step k of an n-step sampler,
    k / steps -> (k + 1) / steps, drawn by `draw_levels`."""
    steps, k = draw_levels(n, step_counts, device)
    return k / steps, (k + 1) / steps


class IntervalObjective:
    """What the few-step objectives share: the model's prediction is the average velocity over
    (t, s) (the instantaneous one at s = t); `interval_fraction` of each batch trains s > t;
    `adaptive_p` weights the loss (-1: the method's own); `step_grid` the step counts trained."""

    few_step = True
    t_start = 0.0
    own_adaptive_p = 0.0
    default_grid: tuple[int, ...] = ()

    def __init__(self, t_sampling: str = "logit_normal", logit_mean: float = 0.0,
                 logit_std: float = 1.0, interval_fraction: float = 0.25, adaptive_p: float = -1.0,
                 step_grid: tuple[int, ...] = ()):
        if t_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"unknown t_sampling {t_sampling!r}; one of {list(TIME_SAMPLINGS)}")
        self.t_sampling, self.logit_mean, self.logit_std = t_sampling, logit_mean, logit_std
        self.interval_fraction = interval_fraction
        self.adaptive_p = self.own_adaptive_p if adaptive_p == -1 else adaptive_p
        self.step_grid = tuple(step_grid) or self.default_grid

    def to_velocity(self, pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return pred


class MeanFlow(IntervalObjective):
    """MeanFlow: u = v + (s - t) du/dt, du/dt by a JVP (see the module doc). A fraction
    `interval_fraction` of each batch trains an interval s > t, the rest s = t (plain flow
    matching); both ends are drawn from the time distribution and sorted, or, for half of them
    when `step_grid` names step counts, are a step of the sampler's grid for one of those counts
    (a short training run then learns the intervals it will be sampled with)."""

    own_adaptive_p = 1.0  # what adaptive_p = -1 means
    default_grid = ()

    def sample_times(self, n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = (sample_times(n, self.t_sampling, self.logit_mean, self.logit_std, device)
                for _ in range(2))
        t, s = torch.minimum(a, b), torch.maximum(a, b)
        if self.step_grid:  # half the intervals are steps the few-step sampler takes
            t_grid, s_grid = grid_steps(n, self.step_grid, device)
            on_grid = torch.rand(n, device=device) < 0.5
            t, s = torch.where(on_grid, t_grid, t), torch.where(on_grid, s_grid, s)
        instant = torch.rand(n, device=device) >= self.interval_fraction
        return t, torch.where(instant, t, s)

    def follows(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The samples whose target uses the velocity field: all (it is the JVP's tangent)."""
        return torch.ones_like(t, dtype=torch.bool)

    def loss(self, model: TwoTimeModel, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
             v: torch.Tensor, known: Optional[tuple] = None) -> torch.Tensor:
        u, du_dt = model.jvp(x_t, t, s, v)
        target = v + broadcast(s - t, v) * du_dt.to(v.dtype)
        return adaptive_mse(u, with_known(target.detach(), known), self.adaptive_p)


class Shortcut(IntervalObjective):
    """Shortcut model: for a fraction `interval_fraction` of each batch a step count n from
    `step_grid` (uniformly) and one of the steps k / n -> (k + 1) / n a sampler with n steps
    takes; the target is the mean of two half steps of the model itself, where a half step of a
    length the model is not trained on (1 / 2n with 2n not in the grid) follows the
    instantaneous velocity. So with a grid 1, 2, 4: 4 steps learn 8 Euler steps of the
    velocity field, 2 steps learn 4 of those, 1 step learns 2. The rest of the batch trains s = t
    on the velocity field. The default grid is the paper's: 1, 2, 4, .., 64."""

    own_adaptive_p = 0.0  # the paper's plain MSE
    default_grid = tuple(2 ** k for k in range(7))

    def sample_times(self, n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        t = sample_times(n, self.t_sampling, self.logit_mean, self.logit_std, device)
        t_step, s_step = grid_steps(n, self.step_grid, device)
        step = torch.rand(n, device=device) < self.interval_fraction
        return torch.where(step, t_step, t), torch.where(step, s_step, t)

    def follows(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The samples whose target uses the velocity field: those with s = t (the steps
        follow the model's own half steps)."""
        return s == t

    def loss(self, model: TwoTimeModel, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
             v: torch.Tensor, known: Optional[tuple] = None) -> torch.Tensor:
        target = v.clone()
        steps = s > t if known is None else (s > t) & ~known[0]
        if steps.any():
            x, t0, half = x_t[steps], t[steps], (s - t)[steps] / 2
            # The half step's own interval where the model learns it, else 0 (instantaneous).
            counts = torch.round(1 / half)
            trained = torch.isin(counts, torch.tensor(self.step_grid, device=half.device,
                                                      dtype=counts.dtype))
            h = torch.where(trained, half, torch.zeros_like(half))
            u1 = model.no_grad(x, t0, t0 + h, steps)
            x_mid = x + broadcast(half, x) * u1
            u2 = model.no_grad(x_mid, t0 + half, t0 + half + h, steps)
            target[steps] = ((u1 + u2) / 2).to(target.dtype)
        return adaptive_mse(model(x_t, t, s), with_known(target, known), self.adaptive_p)


FEW_STEP = {"meanflow": MeanFlow, "shortcut": Shortcut}
