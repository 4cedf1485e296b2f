"""Training objectives: what the model predicts and how that becomes a velocity.

Convention (docs/concepts/how-it-works.md; paths.py): t = 0 is pure noise, t = 1 is data,
x_t = (1 - t) * noise + t * x, and the velocity is v = dx_t/dt = x - noise. Every objective
converts its raw prediction to that velocity (`to_velocity`), so one set of ODE samplers
serves them all, as facebookresearch/flow_matching does with its `epsilon_to_velocity`-style
conversions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .fewstep import FEW_STEP
from .paths import TIME_SAMPLINGS, broadcast, cosine_t, interpolate, sample_times, vp


class FlowMatching:
    """Rectified flow / conditional flow matching (Lipman et al. 2023; Liu et al. 2023): the
    model predicts v = x - noise, at times drawn uniform or logit-normal (paths.sample_times)."""

    few_step = False  # predicts the instantaneous velocity only (fewstep.py: over intervals)

    def __init__(self, t_sampling: str = "logit_normal", logit_mean: float = 0.0,
                 logit_std: float = 1.0):
        if t_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"unknown t_sampling {t_sampling!r}; one of {list(TIME_SAMPLINGS)}")
        self.t_sampling, self.logit_mean, self.logit_std = t_sampling, logit_mean, logit_std

    def sample_t(self, n: int, device=None) -> torch.Tensor:
        return sample_times(n, self.t_sampling, self.logit_mean, self.logit_std, device)

    t_start = 0.0  # samplers may start at pure noise

    def target(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x - noise

    def loss(self, pred: torch.Tensor, x: torch.Tensor, noise: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred.float(), self.target(x, noise, t).float())

    def to_velocity(self, pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return pred


class CleanImageVelocityLoss(FlowMatching):
    """Clean-image prediction, velocity loss (Li & He 2025, "Back to Basics: Let Denoising
    Generative Models Denoise"; objective.kind=xflow): the network outputs the clean image x^,
    trained through the velocity it implies, v^ = (x^ - x_t) / (1 - t), against x - noise, at
    flow matching's times. Noise and velocity fill every dimension of a patch, the clean image
    lies near a low-dimensional manifold: a token narrower than its patch (8x8x3 = 192 numbers
    into width 128) can still carry the clean image, not the noise. 1 - t is clamped at
    `min_gap` (0.05, as Li & He do), so the steps near the data do not dominate the loss."""

    min_gap = 0.05

    def target(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x  # what the network outputs; the loss is on the velocity

    def loss(self, pred: torch.Tensor, x: torch.Tensor, noise: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
        x, noise = x.float(), noise.float()
        return F.mse_loss(self.to_velocity(pred.float(), interpolate(x, noise, t), t), x - noise)

    def to_velocity(self, pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (pred - x_t) / broadcast((1 - t).clamp(min=self.min_gap), x_t)


class CleanImage:
    """Clean-image (x0) prediction with continuous noise levels (the `fmnist-paper` recipe): noise level s ~ Beta(a, b) rescaled to [s_min, s_max]
    (Beta(1, 2.5) favours low noise), t = 1 - s, MSE on the clean image.

    Velocity: from x_t = (1 - t) noise + t x0, noise = (x_t - t x0) / (1 - t), so
    v = x0 - noise = (x0 - x_t) / (1 - t). It is exact for every t < 1; at t = 1 there is no
    noise left and the samplers take their last step with Euler, which lands on x0 itself."""

    few_step = False

    def __init__(self, beta_a: float = 1.0, beta_b: float = 2.5, s_min: float = 0.01,
                 s_max: float = 0.99):
        if not 0 <= s_min < s_max <= 1:
            raise ValueError(f"need 0 <= s_min < s_max <= 1, got {s_min}, {s_max}")
        self.beta = torch.distributions.Beta(torch.tensor(beta_a), torch.tensor(beta_b))
        self.s_min, self.s_max = s_min, s_max

    def sample_t(self, n: int, device=None) -> torch.Tensor:
        s = self.s_min + (self.s_max - self.s_min) * self.beta.sample((n,))
        return (1 - s).to(device)

    t_start = 0.0

    def target(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x

    def loss(self, pred: torch.Tensor, x: torch.Tensor, noise: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred.float(), x.float())

    def to_velocity(self, pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # Clamp keeps t = 1 finite for callers that probe it; samplers never step from t = 1.
        return (pred - x_t) / broadcast((1 - t).clamp(min=1e-4), x_t)


class Diffusion:
    """Noise (eps, Ho et al. 2020) or v prediction (Salimans & Ho 2022) on the cosine schedule
    (Nichol & Dhariwal 2021): noise level s ~ U(0, 1), alpha = cos(pi s / 2), sigma = sin(pi s /
    2), z = alpha x + sigma noise.

    The model sees the point of our line at t = alpha / (alpha + sigma), which is z / r with
    r = alpha + sigma — the same image at another scale, so the DiT and every sampler are shared
    with flow matching (see paths.py). From t alone, alpha = t / h, sigma = (1 - t) / h with
    h = sqrt(t^2 + (1 - t)^2), and z = x_t / h.

    Velocity, exactly: eps: x0 = (x_t - (1 - t) eps) / t, so v = x0 - eps = (x_t - eps) / t,
    which needs t > 0 — samplers start at `t_start`, where s = 0.999 (alpha = 0.0016), as DDPM
    stops short of pure noise. v: x0 = alpha z - sigma v, eps = sigma z + alpha v; then
    v_flow = x0 - eps, defined everywhere."""

    few_step = False

    def __init__(self, prediction: str = "eps"):
        if prediction not in ("eps", "v"):
            raise ValueError(f"unknown diffusion prediction {prediction!r}; one of ['eps', 'v']")
        self.prediction = prediction
        self.t_start = cosine_t(0.999) if prediction == "eps" else 0.0

    def sample_t(self, n: int, device=None) -> torch.Tensor:
        return cosine_t(torch.rand(n, device=device))

    def target(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.prediction == "eps":
            return noise
        alpha, sigma, _ = vp(broadcast(t, x).float())
        return alpha * noise - sigma * x

    def loss(self, pred: torch.Tensor, x: torch.Tensor, noise: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred.float(), self.target(x, noise, t).float())

    def to_velocity(self, pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.prediction == "eps":
            return (x_t - pred) / broadcast(t.clamp(min=1e-4), x_t)
        alpha, sigma, h = vp(broadcast(t, x_t).float())
        z = x_t / h
        return (alpha * z - sigma * pred) - (sigma * z + alpha * pred)


def ot_pairing(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`noise` reordered so that the batch's total squared distance between each image and its
    noise is minimal: minibatch optimal-transport coupling (Tong et al. 2023, Pooladian et al.
    2023; "immiscible diffusion", Li et al. 2024). With independent pairs, the paths of a batch
    cross and the model must learn to average their velocities; assigned pairs cross less, so
    the regression target is less ambiguous and the learned paths straighter. Each noise
    sample is still exactly N(0, I): only which image it is paired with changes. Solved
    exactly (Hungarian algorithm, scipy); for a batch of 32 it costs microseconds."""
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(x.flatten(1).float(), noise.flatten(1).float()).pow(2)
    _, cols = linear_sum_assignment(cost.cpu().numpy())
    return noise[torch.as_tensor(cols, device=noise.device)]


PAIRINGS = ("independent", "ot")

def interval_objective(cls):
    """The constructor from an `ObjectiveConfig` of a few-step objective class (fewstep.py)."""
    def build(cfg):
        return cls(cfg.t_sampling, cfg.logit_mean, cfg.logit_std, cfg.interval_fraction,
                   cfg.adaptive_p, tuple(int(v) for v in cfg.step_grid.split(",") if v))
    return build


# name -> constructor from an `ObjectiveConfig`: a new objective is one entry here.
OBJECTIVES = {
    "flow": lambda cfg: FlowMatching(cfg.t_sampling, cfg.logit_mean, cfg.logit_std),
    "x0": lambda cfg: CleanImage(cfg.beta_a, cfg.beta_b, cfg.s_min, cfg.s_max),
    "xflow": lambda cfg: CleanImageVelocityLoss(cfg.t_sampling, cfg.logit_mean, cfg.logit_std),
    "eps": lambda cfg: Diffusion("eps"),
    "v": lambda cfg: Diffusion("v"),
    **{name: interval_objective(cls) for name, cls in FEW_STEP.items()},
}


def build_objective(cfg):
    """The objective named by an `ObjectiveConfig`."""
    if cfg.kind not in OBJECTIVES:
        raise ValueError(f"unknown objective {cfg.kind!r}; one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[cfg.kind](cfg)
