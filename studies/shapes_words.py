"""The shapes study's word-level encoder arm (docs/studies/shapes.md, round 3): the `t2i` command
line with one more text encoder, `text.encoder=words`, which is not in the package (it did not
beat MiniLM's word pieces at 10 minutes).

`words`: each word of the shapes captions' vocabulary gets its own embedding, trained with the
model, plus a learned embedding of its place in the prompt; no pretrained encoder, no context
(`model.text_attention=joint` lets the DiT's own blocks relate the words). Words outside the
vocabulary share one "unknown" embedding, so it understands nothing but the caption grammar.

    python studies/shapes_words.py -q train --preset shapes-quick \\
        --out runs/study-shapes/words-joint/seed0/run train.seed=0 text.encoder=words \\
        model.text_attention=joint
    python studies/shapes_words.py -q eval report --checkpoint runs/study-shapes/words-joint/seed0/run \\
        --n-per-class 10 --no-dictionary --json runs/study-shapes/words-joint/seed0/eval.json
"""

from __future__ import annotations

import re
import sys

import torch
from torch import nn

from t2i.cli import main
from t2i.data.shapes import training_captions
from t2i.sections import DataConfig
from t2i.text import encoders

WORD = re.compile(r"[a-z]+")
PAD, UNKNOWN, NULL = 0, 1, 2  # NULL: the empty prompt, what guidance contrasts with
MAX_WORDS = 32


class WordEncoder(encoders.TextEncoder):
    prompts = "free text"

    def __init__(self, cfg, classes=None):
        super().__init__()
        words = sorted({w for c in training_captions(DataConfig(dataset="shapes")) for w in WORD.findall(c.lower())})
        self.vocabulary = {w: i + 3 for i, w in enumerate(words)}
        self.dim = 128
        self.embedding = nn.Embedding(len(words) + 3, self.dim)
        nn.init.normal_(self.embedding.weight, std=1.0)  # unit-RMS entries, like a sentence token
        self.position = nn.Embedding(MAX_WORDS, self.dim)
        nn.init.normal_(self.position.weight, std=0.3)

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [[self.vocabulary.get(w, UNKNOWN) for w in WORD.findall(p.lower())][:MAX_WORDS] or [NULL]
                for p in prompts]
        ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        return ids, ids != PAD

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = inputs
        tokens = self.embedding(ids) + self.position.weight[:ids.shape[1]][None]
        return tokens * mask[..., None], mask

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((batch, 1), NULL, dtype=torch.long, device=self.embedding.weight.device)
        return self.forward((ids, ids != PAD))


if __name__ == "__main__":
    encoders.ENCODERS["words"] = WordEncoder
    sys.exit(main(sys.argv[1:]))
