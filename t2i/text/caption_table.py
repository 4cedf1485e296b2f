"""A finite caption set's text-encoder outputs, encoded once and looked up per batch.

A dataset whose captions are a finite list — a labelled dataset's class captions, the emoji's
names and keywords, a captioned folder — need not run the frozen encoder at every training
step: `PretrainedTextEncoder.precompute` encodes the set once into a `CaptionTable` (cached on
disk) and a batch is a lookup. The table is packed: each caption keeps only its real tokens,
one caption after another, so a set of short captions with a few long ones costs what its
tokens cost, not its size times the longest caption.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..utils.fsutil import no_space

log = logging.getLogger(__name__)

# Raise when the layout changes: cached tables of another format are then not found, not misread.
FORMAT = 2
# A set of more distinct captions (a web-scale captioned dataset) is encoded as batches come: its
# table would hold ~5-20 KB per caption (MiniLM's 384 floats per token) and take long to build.
MAX_CAPTIONS = 50_000


def within_table_limit(captions: list[str]) -> bool:
    """Whether a dataset's distinct `captions` are few enough to encode once."""
    if len(captions) > MAX_CAPTIONS:
        log.info("%d distinct captions (more than %d): encoded as batches come", len(captions),
                 MAX_CAPTIONS)
        return False
    return bool(captions)


@dataclass
class CaptionTable:
    """A finite caption set's encoder outputs, packed: each caption only its real tokens."""
    captions: list[str]
    tokens: torch.Tensor  # [T, D]: the real tokens of every caption, one caption after another
    lengths: torch.Tensor  # [N] real tokens of each caption

    def __post_init__(self):
        if len(self.lengths) != len(self.captions):
            raise ValueError(f"{len(self.lengths)} encodings for {len(self.captions)} captions")
        self.index = {c: i for i, c in enumerate(self.captions)}  # caption -> row
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths  # first token of each caption

    @classmethod
    def pack(cls, captions: list[str], batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> "CaptionTable":
        """From the encoder's (tokens [B, L, D], mask [B, L]) of `captions`, in order, in batches."""
        encoded = [(tokens[mask].cpu(), mask.sum(1).cpu()) for tokens, mask in batches]
        return cls(captions, torch.cat([t for t, _ in encoded]).float(),
                   torch.cat([n for _, n in encoded]).long())

    @property
    def nbytes(self) -> int:
        return self.tokens.numel() * self.tokens.element_size() + 16 * len(self.lengths)

    def rows(self, prompts: list[str]) -> Optional[torch.Tensor]:
        """The rows of `prompts`, or None if any prompt is not in the table."""
        rows = [self.index.get(p) for p in prompts]
        return None if None in rows else torch.tensor(rows, dtype=torch.long)

    def lookup(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens [B, L, D], mask [B, L]) of `rows`, padded with masked zeros to the longest."""
        lengths = self.lengths[rows]
        pos = torch.arange(int(lengths.max()))
        mask = pos[None] < lengths[:, None]
        flat = (self.starts[rows][:, None] + pos[None]).clamp(max=len(self.tokens) - 1)
        return self.tokens[flat] * mask[..., None], mask

    def save(self, path: Path, metadata: dict[str, str]) -> None:
        """Written to a temporary file of its own and renamed, so a reader never sees half a
        table and two processes writing the same table never mix their bytes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
        try:
            save_file({"tokens": self.tokens.contiguous(), "lengths": self.lengths}, tmp,
                      metadata=metadata)
            os.replace(tmp, path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise no_space(e, f"the text embeddings {path}") from None

    @classmethod
    def cached(cls, path: Optional[Path], captions: list[str], build: Callable[[], "CaptionTable"],
               metadata: dict[str, str]) -> tuple["CaptionTable", bool]:
        """(the table saved at `path` if one reads and fits `captions`, else `build()` saved
        there; whether it came from the file). A damaged or cut-short file is rebuilt."""
        if path is not None and path.is_file():
            try:
                return cls.load(path, captions), True
            except (SafetensorError, ValueError, KeyError, OSError) as e:
                log.warning("text embeddings %s cannot be used (%s); encoding again", path, e)
        table = build()
        if path is not None:
            table.save(path, metadata)
        return table, False

    @classmethod
    def load(cls, path: Path, captions: list[str]) -> "CaptionTable":
        saved = load_file(str(path))
        try:
            return cls(captions, saved["tokens"], saved["lengths"])
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
