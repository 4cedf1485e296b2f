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

from .fsutil import cache_root
from .pipeline import Pipeline
from .text import PretrainedTextEncoder


@dataclass
class Explanation:
    prompt: str
    nearest: list[tuple[str, str, float]]  # (training caption, its class, cosine similarity)
    classes: list[tuple[str, float]]  # every class by its best caption's similarity, best first

    def format(self) -> str:
        lines = [f"{self.prompt!r} is read as: "
                 + ", ".join(f"{name} {sim:.2f}" for name, sim in self.classes[:3]),
                 "  nearest training captions:"]
        lines += [f"    {sim:.2f}  {cap!r} ({name})" for cap, name, sim in self.nearest]
        return "\n".join(lines)


class Explainer:
    """Embeds a pipeline's training captions once; `explain(prompts)` then costs one encoder
    pass over the prompts."""

    def __init__(self, pipe: Pipeline):
        text, classes = pipe.networks["text"], pipe.classes
        if not isinstance(text, PretrainedTextEncoder):
            raise ValueError("explain needs a pretrained text encoder: a class encoder maps a "
                             "prompt to its class by name, nothing to explain")
        if classes is None:
            raise ValueError("explain needs a class-labelled training set: a model trained on "
                             "free-form captions does not record them")
        self.text = text
        per_class = classes.training_captions()
        self.captions = [c for caps in per_class for c in caps]
        self.labels = [classes.names[k] for k, caps in enumerate(per_class) for _ in caps]
        text.precompute(classes.all_captions(), cache_root(pipe.config.data) / "text")
        self.embeddings = text.sentence_embeddings(self.captions)

    def explain(self, prompts: list[str], k: int = 5) -> list[Explanation]:
        sims = self.text.sentence_embeddings(prompts) @ self.embeddings.T  # [P, captions]
        out = []
        for prompt, row in zip(prompts, sims):
            top = row.topk(min(k, len(row)))
            nearest = [(self.captions[i], self.labels[i], float(s)) for s, i in zip(top.values, top.indices)]
            best: dict[str, float] = {}
            for label, s in zip(self.labels, row.tolist()):
                best[label] = max(best.get(label, -1.0), s)
            out.append(Explanation(prompt, nearest, sorted(best.items(), key=lambda kv: -kv[1])))
        return out
