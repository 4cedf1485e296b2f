"""What training logs beside the loss (the flow-matching design's latent and velocity
statistics): the mean and std of the data the backbone learns (pixels or latents: a latent
scale far from unit variance shows here first), and per time bucket the RMS of the velocity
the model predicts beside that of its target, x - noise. A predicted RMS well under the
target's in some bucket is a model that has not learned that part of the path yet; one far
above it, a run on its way to diverging."""

from __future__ import annotations

import torch

BUCKETS = (0.0, 0.25, 0.5, 0.75, 1.0)  # time buckets: t = 0 noise .. 1 data


def _rms(v: torch.Tensor) -> float:
    return v.float().pow(2).mean().sqrt().item()


@torch.no_grad()
def batch_statistics(x: torch.Tensor, velocity: torch.Tensor, target: torch.Tensor,
                     t: torch.Tensor) -> dict[str, float]:
    """Scalars named "stats/...": the batch's data mean and std, and for each time bucket
    holding samples the RMS of the predicted and the target velocity."""
    out = {"stats/data_mean": x.float().mean().item(), "stats/data_std": x.float().std().item()}
    for lo, hi in zip(BUCKETS[:-1], BUCKETS[1:]):
        rows = (t >= lo) & ((t < hi) if hi < 1 else (t <= hi))
        if rows.any():
            name = f"t{lo:.2f}-{hi:.2f}"
            out[f"stats/velocity_rms_{name}"] = _rms(velocity[rows])
            out[f"stats/target_rms_{name}"] = _rms(target[rows])
    return out
