"""Backbones: the networks that predict from (x_t, t, text tokens). The DiT (`dit.py`, ours) is
the default; the U-Net (`unet.py`) wraps diffusers'. A new backbone is one entry in BACKBONES
with the same call: forward(x_t, t, tokens, mask, s=None) -> a prediction shaped like x_t.
"""

from __future__ import annotations

from torch import nn

from .dit import DiT, linear_attention, timestep_embedding
from .unet import UNet

__all__ = ["BACKBONES", "DiT", "UNet", "build_backbone", "linear_attention", "timestep_embedding"]

BACKBONES = {"dit": DiT, "unet": UNet}


def build_backbone(cfg, image_shape: tuple[int, int, int], text_dim: int,
                   two_times: bool = False) -> nn.Module:
    """The backbone a `ModelConfig` names, on tensors of `image_shape`; `two_times` for
    objectives that predict over an interval (t, s)."""
    if cfg.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {cfg.backbone!r}; one of {sorted(BACKBONES)}")
    return BACKBONES[cfg.backbone](cfg, image_shape, text_dim, two_times)
