"""The training captions nearest a prompt in the text encoder's sentence space, and prompts
grounded on them (`sample.retrieve`).

A model conditioned on a frozen pretrained encoder learns an image for each training caption's
embedding, and draws what it learned nearby for a prompt it never saw. How far that carries is
measured (docs/studies/text.md): on held-out Fashion-MNIST paraphrases, the nearest training
caption names the right class 83% of the time, while the model conditioned on the paraphrase's
own embedding draws it 67% of the time: between two classes' captions the diffusion loss has
learned a blend, and guidance draws a blend. Grounding replaces the prompt's sentence embedding
by an average of its k nearest training captions' embeddings, weighted by softmax(cosine /
temperature): the model is then conditioned where it was trained, and the text encoder's
neighbourhoods (what the 83% measures) decide the class. A prompt that is itself a training
caption without modifiers (a class name) is (almost) unchanged; one with modifiers also leans
on the captions of its head phrase (below).

This needs the finite caption set of a class-labelled dataset (its templates and bank) and the
sentence pooling (one token, the sentence embedding); a model of free-form captions records no
caption list in its checkpoint.

Before a prompt is looked up, the words the captions never use are read in a dictionary
(lexicon.py: "a hoodie" is "a hooded sweatshirt"), and its misspelt words are corrected against
the captions' vocabulary (spelling.py): a rare word or a typo otherwise moves a prompt's
embedding far from the captions it means. And
a prompt's head phrase counts as much as the whole prompt: a sentence embedding weighs every
word, so "dress pants for a wedding" sat nearest "a dress for a wedding" and "a bag to carry to
the beach" nearest "something to wear for the beach"; each caption's similarity is the mean of
its cosine to the prompt and to the prompt's words before its first modifier ("dress pants",
"a bag"), where those say what the thing is (`head_phrase`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from .captions import Classes
from .encoders import PretrainedTextEncoder, TextEncoder
from .lexicon import MODIFIER, Reader, WordReading, head_word
from .spelling import WORD, Speller


def index_problem(text: TextEncoder, classes: Optional[Classes]) -> Optional[str]:
    """What a model lacks for its training captions to be looked up by meaning, or None."""
    if not isinstance(text, PretrainedTextEncoder):
        return "a pretrained text encoder (a class encoder maps a prompt to its class by name)"
    if classes is None:
        return "a class-labelled training set (a model of free-form captions records no caption list)"
    return None


def grounding_problem(text: TextEncoder, classes: Optional[Classes]) -> Optional[str]:
    """Why prompts cannot be grounded on this model's training captions, or None if they can."""
    if problem := index_problem(text, classes):
        return problem
    if text.pooling != "sentence":
        return f"text.pooling=sentence (this model was trained with {text.pooling!r})"
    return None


# Words that say nothing about what the thing is: "something | to wear on your feet" has no head.
VAGUE = {"a", "an", "the", "some", "something", "anything", "what", "one", "pair", "of"}


def head_phrase(prompt: str, knows: Callable[[str], bool]) -> Optional[str]:
    """The prompt's words before its first modifier, if it has modifiers and those words name
    something (not "something", "a pair of", nor a pronoun and its adjective: "something light")
    and are all words `knows` (a typo left in the head would be all the head says); else None."""
    head = MODIFIER.split(prompt, maxsplit=1)[0].strip()
    words = [w.lower() for w in WORD.findall(head)]
    if head == prompt.strip() or not set(words) - VAGUE or not all(knows(w) for w in words):
        return None
    return head if head_word(prompt) else None


def one_token(tokenizer):
    """known(word): whether the tokenizer has the word as one token of its vocabulary."""
    def known(word: str) -> bool:
        pieces = tokenizer.tokenize(word)
        return len(pieces) == 1 and pieces[0] != tokenizer.unk_token
    return known


def closeness(text: PretrainedTextEncoder) -> Callable[[list[str], list[str]], list[float]]:
    """closeness(a, b): the encoder's cosine of each text of `a` with the one beside it in `b`."""
    def cosines(a: list[str], b: list[str]) -> list[float]:
        return (text.sentence_embeddings(a) * text.sentence_embeddings(b)).sum(-1).tolist()
    return cosines


class CaptionIndex:
    """A labelled dataset's training captions, each with its class and its sentence embedding
    (computed once, `precompute`d into the encoder's caption table and cached on disk).
    Set `dictionary`, `spelling` or `heads` False (on an index, or here for every index) to look
    prompts up without a dictionary, as typed, or as wholes; a call's `dictionary` argument
    overrides the first for that call. `reader`: the dictionary reading of these captions where
    the caller has one (the pipeline's), else one is made."""

    dictionary = True  # unknown words are read in WordNet and t2i's supplement first (lexicon.py)
    spelling = True  # prompts are spelled against the captions' words before the lookup (`read`)
    heads = True  # a prompt's head phrase counts as much as the whole prompt (module doc)

    def __init__(self, text: TextEncoder, classes: Optional[Classes], cache: Optional[Path] = None,
                 reader: Optional[Reader] = None):
        if problem := index_problem(text, classes):
            raise ValueError(f"the nearest training captions need {problem}")
        self.text, self.classes = text, classes
        per_class = classes.training_captions()
        self.captions = [c for caps in per_class for c in caps]
        self.labels = torch.tensor([k for k, caps in enumerate(per_class) for _ in caps])
        text.precompute(classes.all_captions(), cache)
        self.embeddings = text.sentence_embeddings(self.captions)  # [N, D], unit length
        self.speller = Speller(self.captions, one_token(text.tokenizer))
        self.reader = reader or Reader(self.captions, self.labels.tolist(), one_token(text.tokenizer), closeness(text))

    def read(self, prompt: str, dictionary: Optional[bool] = None) -> tuple[str, Optional[str], list[WordReading]]:
        """The prompt as it is looked up (its unknown words read in the dictionary, lexicon.py,
        unless `dictionary` (default: the index's) is False, then its misspelt words corrected,
        spelling.py), its head phrase (None: the whole prompt alone) and how its unknown words
        were read."""
        use = self.dictionary if dictionary is None else dictionary
        looked_up, words = self.reader(prompt) if use else (prompt, [])
        spelled = self.speller(looked_up) if self.spelling else looked_up
        return spelled, head_phrase(spelled, self.speller.knows) if self.heads else None, words

    def reading(self, dictionary: Optional[bool] = None) -> str:
        """How prompts are read before they are looked up, as reports record it."""
        use = self.dictionary if dictionary is None else dictionary
        parts = ((["dictionary"] if use else []) + (["spelled"] if self.spelling else [])
                 + (["head phrases"] if self.heads else []))
        return ", ".join(parts) or "as typed"

    def similarities(self, prompts: list[str], dictionary: Optional[bool] = None) -> torch.Tensor:
        """[P, N]: each prompt's similarity to each training caption: the cosine of the prompt as
        `read`, averaged with its head phrase's where it has one."""
        read = [self.read(p, dictionary) for p in prompts]
        sims = self.text.sentence_embeddings([spelled for spelled, _, _ in read]) @ self.embeddings.T
        rows = [i for i, (_, head, _) in enumerate(read) if head]
        if rows:
            heads = self.text.sentence_embeddings([read[i][1] for i in rows]) @ self.embeddings.T
            sims[rows] = (sims[rows] + heads) / 2
        return sims

    def ground(self, prompts: list[str], k: int, temperature: float,
               dictionary: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The condition (tokens [P, 1, D], mask [P, 1]) of each prompt grounded on its k nearest
        training captions (see the module doc), read with or without the dictionary (`read`)."""
        if problem := grounding_problem(self.text, self.classes):
            raise ValueError(f"grounding prompts on the training captions (sample.retrieve) needs {problem}")
        top = self.similarities(prompts, dictionary).topk(min(k, len(self.captions)), dim=1)
        weights = torch.softmax(top.values / temperature, dim=1)
        mixed = (weights[..., None] * self.embeddings[top.indices]).sum(1)
        return self.text.sentence_tokens(nn.functional.normalize(mixed, dim=-1))
