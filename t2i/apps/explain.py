"""What a text model understood of a prompt: its nearest training captions and classes in the
text encoder's space.

A model conditioned on a frozen pretrained encoder draws, for a prompt it never saw, roughly
what it learned for the training captions the encoder puts nearby. So the nearest training
captions (cosine similarity of the encoder's sentence embeddings: its hidden states mean-pooled
over real tokens and normalised, how all-MiniLM-L6-v2 embeds sentences) say why "a red car"
draws a bag: nothing in training is near it, and the nearest thing is a bag.

Only a labelled dataset has a known, finite set of training captions (templates, and the bank
where data.captions=bank); a model trained on a captioned folder has no such list in its
checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..pipeline import Pipeline


@dataclass
class Explanation:
    """How one prompt was read: spelled, its head phrase, the nearest training captions and classes."""
    prompt: str
    spelled: str  # the prompt as it was looked up, misspelt words corrected (spelling.py)
    head: Optional[str]  # its head phrase, weighed as much as the whole (retrieval.py), if any
    # (training caption, its class, similarity: the cosine, averaged with the head's if any)
    nearest: list[tuple[str, str, float]]
    classes: list[tuple[str, float]]  # every class by its best caption's similarity, best first

    def reading(self) -> str:
        """How the prompt was read, where not simply as typed: "spelled '...', head '...'"."""
        return ", ".join(([f"spelled {self.spelled!r}"] if self.spelled != self.prompt else [])
                         + ([f"head {self.head!r}"] if self.head else []))

    def format(self) -> str:
        read = f" ({self.reading()})" if self.reading() else ""
        lines = [f"{self.prompt!r}{read} is read as: "
                 + ", ".join(f"{name} {sim:.2f}" for name, sim in self.classes[:3]),
                 "  nearest training captions:"]
        lines += [f"    {sim:.2f}  {cap!r} ({name})" for cap, name, sim in self.nearest]
        return "\n".join(lines)


class Explainer:
    """`explain(prompts)` costs one encoder pass over the prompts once the pipeline's training
    captions are embedded (`Pipeline.caption_index`, shared with grounding)."""

    def __init__(self, pipe: Pipeline):
        self.index = pipe.caption_index()  # raises ValueError where there is nothing to explain
        self.names = pipe.classes.names

    def explain(self, prompts: list[str], k: int = 5) -> list[Explanation]:
        index, out = self.index, []
        for prompt, row in zip(prompts, index.similarities(prompts)):
            top = row.topk(min(k, len(row)))
            nearest = [(index.captions[i], self.names[index.labels[i]], float(s))
                       for s, i in zip(top.values, top.indices)]
            best: dict[str, float] = {}
            for label, s in zip(index.labels.tolist(), row.tolist()):
                best[self.names[label]] = max(best.get(self.names[label], -1.0), s)
            classes = sorted(best.items(), key=lambda kv: -kv[1])
            out.append(Explanation(prompt, *index.read(prompt), nearest, classes))
        return out
