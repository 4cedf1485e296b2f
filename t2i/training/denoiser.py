"""The trainable networks as one module (`Denoiser`), and a few-step loss's view of it
(`TwoTime`): what the trainer runs, possibly wrapped in DistributedDataParallel."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..flow.fewstep import jvp
from ..text.encoders import drop_condition


class Denoiser(nn.Module):
    """The trainable networks as one module whose forward touches every trainable parameter,
    which is what DistributedDataParallel synchronises: text encoding, condition dropout, backbone."""

    def __init__(self, networks: nn.ModuleDict):
        super().__init__()
        self.networks = networks

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text_inputs, drop: torch.Tensor,
                s: Optional[torch.Tensor] = None, tangents: Optional[tuple] = None):
        """The backbone's prediction; with `tangents` (of x_t, t, s) also its JVP, computed here
        so that under DDP the pass that carries the gradient is the wrapped forward."""
        tokens, mask = self.condition(text_inputs, drop)
        backbone = self.networks["backbone"]
        if tangents is None:
            return backbone(x_t, t, tokens, mask, s)
        return jvp(lambda x, t, s: backbone(x, t, tokens, mask, s), (x_t, t, s), tangents)

    def condition(self, text_inputs, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The text tokens and mask the backbone attends to, the null condition where `drop`."""
        text = self.networks["text"]
        tokens, mask = text(text_inputs)
        return drop_condition(tokens, mask, *text.null(len(drop)), drop)


class TwoTime:
    """A few-step loss's view of the model (fewstep.TwoTimeModel) for one micro-batch: the
    gradient-carrying calls go through the (possibly DDP-wrapped) model, the others through
    the plain module."""

    def __init__(self, model: nn.Module, plain: Denoiser, text_inputs, drop: torch.Tensor):
        self.model, self.plain, self.text_inputs, self.drop = model, plain, text_inputs, drop
        self.cond = None  # the condition, encoded once for the calls without gradients

    def __call__(self, x, t, s):
        return self.model(x, t, self.text_inputs, self.drop, s)

    @torch.no_grad()
    def no_grad(self, x, t, s, rows=None):
        if self.cond is None:
            self.cond = self.plain.condition(self.text_inputs, self.drop)
        tokens, mask = self.cond if rows is None else (c[rows] for c in self.cond)
        return self.plain.networks["backbone"](x, t, tokens, mask, s)

    def jvp(self, x, t, s, v):
        return self.model(x, t, self.text_inputs, self.drop, s,
                          (v, torch.ones_like(t), torch.zeros_like(s)))
