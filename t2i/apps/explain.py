"""What a text model understood of a prompt: its nearest training captions and classes in the
text encoder's space.

A model conditioned on a frozen pretrained encoder draws, for a prompt it never saw, roughly
what it learned for the training captions the encoder puts nearby. So the nearest training
captions (cosine similarity of the encoder's sentence embeddings: its hidden states mean-pooled
over real tokens and normalised, how all-MiniLM-L6-v2 embeds sentences) say why "a red car"
draws a bag: nothing in training is near it, and the nearest thing is a bag.

Only a labelled dataset has a known, finite set of training captions (templates, and the bank
where data.captions=bank); a model trained on a captioned folder has no such list in its
checkpoint. For the emoji and shapes, whose captions t2i writes, an explanation says how the
prompt's unknown words were read in the dictionary (text/lexicon.py) and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..pipeline import Pipeline
from ..text.lexicon import WordReading


@dataclass
class Explanation:
    """How one prompt was read: its unknown words in the dictionary, spelled, its head phrase,
    the nearest training captions and classes."""
    prompt: str
    spelled: str  # the prompt as it was looked up: words read (lexicon.py), typos corrected (spelling.py)
    head: Optional[str]  # its head phrase, weighed as much as the whole (retrieval.py), if any
    words: list[WordReading]  # how the words the captions never use were read (lexicon.py)
    # (training caption, its class, similarity: the cosine, averaged with the head's if any)
    nearest: list[tuple[str, str, float]]
    classes: list[tuple[str, float]]  # every class by its best caption's similarity, best first

    def reading(self) -> str:
        """How the prompt was read, where not simply as typed: "looked up as '...', head '...'"."""
        return ", ".join(([f"looked up as {self.spelled!r}"] if self.spelled != self.prompt else [])
                         + ([f"head {self.head!r}"] if self.head else []))

    def format(self) -> str:
        if not self.classes:  # a captioned dataset: the dictionary's reading only
            drawn = f"drawn as {self.spelled!r}" if self.spelled != self.prompt else "drawn as typed"
            return "\n".join([f"{self.prompt!r} is {drawn}", *(f"  {w}" for w in self.words)])
        read = f" ({self.reading()})" if self.reading() else ""
        lines = [f"{self.prompt!r}{read} is read as: "
                 + ", ".join(f"{name} {sim:.2f}" for name, sim in self.classes[:3])]
        lines += [f"  {w}" for w in self.words]
        lines += ["  nearest training captions:"]
        lines += [f"    {sim:.2f}  {cap!r} ({name})" for cap, name, sim in self.nearest]
        return "\n".join(lines)


class Explainer:
    """`explain(prompts)` costs one encoder pass over the prompts once the pipeline's training
    captions are embedded (`Pipeline.caption_index`, shared with grounding)."""

    def __init__(self, pipe: Pipeline, dictionary: Optional[bool] = None):
        """`dictionary`: whether unknown words are read in the dictionary (None: as the
        checkpoint samples, `sample.dictionary`)."""
        self.dictionary = pipe.config.sample.dictionary if dictionary is None else dictionary
        self.reader = pipe.reader() if pipe.classes is None else None
        if self.reader is None:
            self.index = pipe.caption_index()  # raises ValueError where there is nothing to explain
            self.names = pipe.classes.names

    def explain(self, prompts: list[str], k: int = 5) -> list[Explanation]:
        if self.reader is not None:
            read = [self.reader(p) if self.dictionary else (p, []) for p in prompts]
            return [Explanation(p, text, None, words, [], []) for p, (text, words) in zip(prompts, read)]
        index, out = self.index, []
        for prompt, row in zip(prompts, index.similarities(prompts, self.dictionary)):
            top = row.topk(min(k, len(row)))
            nearest = [(index.captions[i], self.names[index.labels[i]], float(s))
                       for s, i in zip(top.values, top.indices)]
            best: dict[str, float] = {}
            for label, s in zip(index.labels.tolist(), row.tolist()):
                best[self.names[label]] = max(best.get(self.names[label], -1.0), s)
            classes = sorted(best.items(), key=lambda kv: -kv[1])
            out.append(Explanation(prompt, *index.read(prompt, self.dictionary), nearest, classes))
        return out
