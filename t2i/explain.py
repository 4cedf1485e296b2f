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

from .pipeline import Pipeline


@dataclass
class Explanation:
    prompt: str
    spelled: str  # the prompt as it was looked up, misspelt words corrected (spelling.py)
    nearest: list[tuple[str, str, float]]  # (training caption, its class, cosine similarity)
    classes: list[tuple[str, float]]  # every class by its best caption's similarity, best first

    def format(self) -> str:
        spelled = f" (spelled {self.spelled!r})" if self.spelled != self.prompt else ""
        lines = [f"{self.prompt!r}{spelled} is read as: "
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
            out.append(Explanation(prompt, index.read(prompt), nearest, classes))
        return out
