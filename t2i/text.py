"""Text encoders: prompts -> (tokens [B, L, D], mask [B, L]).

Every encoder answers the same three calls, so the model and the sampler never know which one
they have: `encode(prompts)` for free text, `encode_labels(labels)` for the class-labelled
training data, and `null(batch)` for the unconditional input of classifier-free guidance. The
mask is True where a token is real; the class encoders emit one token per prompt, pretrained
encoders (a later addition) emit padded sequences, which the mask already supports.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import normalize_prompt, prompt_lookup


class ClassTextEncoder(nn.Module):
    """One token per prompt naming a class.

    onehot: the token is the class's one-hot vector; its null is the all-zero vector, which is no
        class at all (the model's text projection then sees only its bias).
    learned: a trainable embedding with one extra row for the null condition.
    """

    def __init__(self, kind: str, class_names: list[str], synonyms: list[list[str]], dim: int = 64):
        super().__init__()
        if kind not in ("onehot", "learned"):
            raise ValueError(f"unknown class encoder {kind!r}; one of ['learned', 'onehot']")
        self.kind = kind
        self.class_names = list(class_names)
        self.num_classes = len(class_names)
        self.lookup = prompt_lookup(class_names, synonyms)
        self.synonyms = synonyms
        self.register_buffer("_probe", torch.zeros(0), persistent=False)  # follows .to(device)
        if kind == "learned":
            self.embedding = nn.Embedding(self.num_classes + 1, dim)  # last row: null
            nn.init.normal_(self.embedding.weight, std=0.02)
            self.dim = dim
        else:
            self.dim = self.num_classes

    def classes_of(self, prompts: list[str]) -> torch.Tensor:
        """Class index of each prompt, by case-insensitive name or synonym, with or without
        a caption template ("a photo of a bag")."""
        out = []
        for p in prompts:
            key = normalize_prompt(p)
            if key not in self.lookup:
                valid = "; ".join(f"{n} ({', '.join(s[:3])})"
                                  for n, s in zip(self.class_names, self.synonyms))
                raise ValueError(f"prompt {p!r} names no class this {self.kind} model knows. "
                                 f"Use a class name or synonym, optionally as 'a photo of a ...': {valid}")
            out.append(self.lookup[key])
        return torch.tensor(out, dtype=torch.long)

    def encode_labels(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = labels.to(self.device)
        if self.kind == "learned":
            tokens = self.embedding(labels)
        else:
            tokens = nn.functional.one_hot(labels, self.num_classes).float()
        mask = torch.ones(len(labels), 1, dtype=torch.bool, device=labels.device)
        return tokens[:, None, :], mask  # (B, 1, D), (B, 1)

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_labels(self.classes_of(prompts))

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "learned":
            idx = torch.full((batch,), self.num_classes, dtype=torch.long, device=self.device)
            tokens = self.embedding(idx)[:, None, :]
        else:
            tokens = torch.zeros(batch, 1, self.dim, device=self.device)
        return tokens, torch.ones(batch, 1, dtype=torch.bool, device=self.device)

    @property
    def device(self) -> torch.device:
        return self._probe.device


def drop_condition(tokens: torch.Tensor, mask: torch.Tensor, null_tokens: torch.Tensor,
                   null_mask: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the condition of the samples where `drop` is True by the null condition.

    Dropping per sample (not per batch) lets every batch teach both the conditional and the
    unconditional velocity that classifier-free guidance combines (Ho & Salimans, 2022)."""
    d = drop.to(tokens.device)
    return (torch.where(d[:, None, None], null_tokens, tokens),
            torch.where(d[:, None], null_mask, mask))


def build_text_encoder(cfg, class_names: list[str], synonyms: list[list[str]]) -> nn.Module:
    """The encoder named by a `TextConfig`."""
    return ClassTextEncoder(cfg.encoder, class_names, synonyms, cfg.dim)
