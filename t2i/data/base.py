"""What every dataset is: an `ImageDataset` (uint8 images with a class label or captions per
example), the epoch sampler that walks it, and the error a bad data file raises."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..text.captions import Classes


class DataError(RuntimeError):
    """A dataset file is missing, truncated or corrupt."""


@dataclass
class ImageDataset:
    """Images as uint8 [N, C, H, W]; for a labelled dataset, integer labels and the `classes`
    they name, for a captioned one, the captions of each image (labels are then -1)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: Optional[Classes] = None
    captions: Optional[list[list[str]]] = None
    # With a caption bank: the share of draws taken from the class's own templates (its names
    # in a few templates) rather than from all its captions (data.template_share).
    template_share: float = 0.0
    skipped: Optional[dict] = None  # images left out while reading the source, by reason

    def __post_init__(self):
        # Each class's training captions, looked up per example when batches are drawn; the
        # templates come first (Classes.training_captions).
        self._class_captions = self.classes.training_captions() if self.classes else None
        self._templates = [len(c) for c in self.classes.template_captions()] if self.classes else None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def take(self, rows: slice) -> "ImageDataset":
        """The examples `rows` (a slice: a memory-mapped dataset stays memory-mapped)."""
        return dataclasses.replace(self, images=self.images[rows], labels=self.labels[rows],
                                   captions=self.captions[rows] if self.captions is not None else None)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images scaled to [-1, 1] and their labels."""
        return self.images[idx].float().div_(127.5).sub_(1.0), self.labels[idx]

    def caption_options(self, idx) -> list[list[str]]:
        """Every caption each example of `idx` may be trained on: its own, or its class's
        training captions."""
        if self.captions is not None:
            return [self.captions[int(i)] for i in idx]
        return [self._class_captions[int(y)] for y in self.labels[np.asarray(idx)].tolist()]

    def all_captions(self) -> list[str]:
        """Every distinct caption the dataset trains on (a labelled dataset's also holds its
        held-out prompts): the finite set a frozen text encoder can encode once."""
        if self.captions is None:
            return self.classes.all_captions() if self.classes is not None else []
        return list(dict.fromkeys(c for options in self.captions for c in options))

    def captions_of(self, idx: torch.Tensor, u: torch.Tensor) -> list[str]:
        """One caption per example of `idx`, the choice among its captions made by the uniform
        numbers `u` (drawn by the caller, so that every DDP rank draws the same ones)."""
        options = self.caption_options(idx)
        if self.captions is None and self.template_share and self.classes.bank:
            share = self.template_share  # u < share: one of the class's templates, u rescaled
            labels = self.labels[np.asarray(idx)].tolist()
            options = [o[:self._templates[int(y)]] if x < share else o
                       for o, y, x in zip(options, labels, u.tolist())]
            u = torch.where(u < share, u / share, (u - share) / max(1 - share, 1e-12))
        return [o[min(int(x * len(o)), len(o) - 1)] for o, x in zip(options, u.tolist())]

    def sample_prompts(self, k: int = 10) -> list[str]:
        """Prompts for sample grids during training: the class names, else the first `k`
        distinct captions."""
        if self.classes is not None:
            return list(self.classes.names)
        return list(dict.fromkeys(c[0] for c in self.captions[:10 * k]))[:k]


class EpochSampler:
    """Indices in a fresh random permutation each epoch. Its state (permutation and cursor) is
    checkpointed, so a resumed run sees the data in the same order as an uninterrupted one."""

    def __init__(self, n: int):
        self.n = n
        self.perm, self.cursor = torch.randperm(n), 0

    def load(self, perm: torch.Tensor, cursor: int) -> None:
        self.perm, self.cursor = perm, cursor

    def next(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.cursor >= len(self.perm):
                self.perm, self.cursor = torch.randperm(self.n), 0
            take = self.perm[self.cursor:self.cursor + k]
            self.cursor += len(take)
            k -= len(take)
            out.append(take)
        return torch.cat(out)
