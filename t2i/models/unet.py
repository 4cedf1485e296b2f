"""The U-Net backbone: diffusers' `UNet2DConditionModel` behind the DiT's call."""

from __future__ import annotations

import torch
from torch import nn

from .dit import interval, timestep_embedding


class UNet(nn.Module):
    """The latent-DDPM backbone: a U-Net with cross-attention to the text tokens,
    diffusers' `UNet2DConditionModel` in a small configuration (the well-kept implementation;
    only the wrapper is ours). Same call as the DiT: forward(x_t, t, tokens, mask) -> prediction.
    Text tokens are projected to the U-Net's cross-attention width; padding is masked."""

    t_freq = 256  # sinusoidal features of a two-time U-Net's interval

    def __init__(self, cfg, image_shape: tuple[int, int, int], text_dim: int,
                 two_times: bool = False):
        super().__init__()
        try:
            from diffusers import UNet2DConditionModel
        except ImportError:
            raise ImportError("model.backbone=unet needs diffusers: pip install 't2i[vae]'") from None
        if cfg.text_stream or not cfg.pooled_text or cfg.text_positions:
            raise ValueError("model.text_stream, model.pooled_text=false and model.text_positions "
                             "are DiT options; the U-Net attends to the projected tokens")

        C, H, W = image_shape
        widths = tuple(int(c) for c in cfg.unet_channels.split(","))
        if H % 2 ** (len(widths) - 1) or W % 2 ** (len(widths) - 1):
            raise ValueError(f"a {len(widths)}-level U-Net halves the image {len(widths) - 1} times: "
                             f"{H}x{W} is not divisible by {2 ** (len(widths) - 1)}")
        n = len(widths)
        self.text_proj = nn.Linear(text_dim, cfg.width)
        self.unet = UNet2DConditionModel(
            sample_size=H, in_channels=C, out_channels=C, block_out_channels=widths,
            layers_per_block=cfg.layers_per_block, cross_attention_dim=cfg.width,
            attention_head_dim=max(1, cfg.width // cfg.num_heads), norm_num_groups=min(32, widths[0]),
            # Attention at every level but the first (the largest feature map), as SD does.
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            # Two times: the interval's embedding enters through the time embedding's condition
            # projection, zero at first (as the DiT's).
            time_cond_proj_dim=self.t_freq if two_times else None)
        self.two_times = two_times
        if two_times:
            nn.init.zeros_(self.unet.time_embedding.cond_proj.weight)
        # Zero output layer: the untrained network predicts exactly 0, like the DiT.
        nn.init.zeros_(self.unet.conv_out.weight)
        nn.init.zeros_(self.unet.conv_out.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        context = self.text_proj(tokens)  # (B, L, D)
        if s is not None and not self.two_times:
            raise ValueError("this backbone was built for one time; few-step objectives need two_times")
        cond = timestep_embedding(interval(t, s), self.t_freq) if self.two_times else None
        # Timesteps scaled to DDPM's 0..1000 range, which the sinusoidal embedding expects.
        return self.unet(x, 1000.0 * t, encoder_hidden_states=context,
                         encoder_attention_mask=mask, timestep_cond=cond).sample
