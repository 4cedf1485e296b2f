"""Did-you-mean for prompts: a misspelt word is replaced by the nearest word of the training
captions, before the prompt is looked up among them (grounding, `t2i sample --explain`).

A frozen text encoder reads a typo as different word pieces ("cotten" is "cot" + "##ten",
"t-shrit" ends in "sh" + "##rit"), and its sentence embedding lands far from every caption that
says "cotton" or "shirt": grounded on its nearest captions, "a cotten t-shrit" drew whatever
those happened to be. Search engines solve this with the vocabulary of their index, and so does
this: the vocabulary is the words of the training captions, which is also all the model was
trained to draw.

A word is left as typed if it is shorter than four letters (too many words are one edit from
"bag" or "tee"), if the captions use it, if the text encoder has it as one token, or if it is
an English word (pyspellchecker's dictionary: "thongs", "sporty", "singlet" are words, not
typos of "things", "sports", "single"). Otherwise it becomes the most frequent caption word
one edit away (a letter inserted, deleted, changed, or two neighbours swapped) that begins with
the same letter (typos rarely change the first one: "jandals" is not "sandals"); none means no
change. Two edits were tried on the development prompts and turned unknown words into wrong
ones ("botoms" into "boots", "bodycn" into "body") more often than they mended typos.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable

WORD = re.compile(r"[A-Za-z]+")
SHORTEST = 4  # letters: shorter words are left as typed


class Speller:
    """`speller(prompt)`: the prompt with each misspelt word corrected (see the module doc);
    `known(word)` says whether the text encoder has the (lower-case) word as one token."""

    def __init__(self, captions: list[str], known: Callable[[str], bool]):
        try:
            from spellchecker import SpellChecker
        except ImportError:
            raise ImportError("spelling prompts (grounding, --explain) needs pyspellchecker: "
                              "pip install 't2i[text]'") from None
        self.counts = Counter(w.lower() for c in captions for w in WORD.findall(c))
        self.known = known
        self.english = SpellChecker()
        self.vocabulary = SpellChecker(language=None)
        self.vocabulary.word_frequency.load_words(list(self.counts))
        self._memo: dict[str, str] = {}

    def word(self, word: str) -> str:
        """The correction of one lower-case word (the word itself if none)."""
        if word not in self._memo:
            self._memo[word] = self._correct(word)
        return self._memo[word]

    def knows(self, word: str) -> bool:
        """Whether a lower-case word is left as typed: short, a caption word, one token of the
        encoder, or English."""
        return len(word) < SHORTEST or word in self.counts or self.known(word) or bool(self.english.known([word]))

    def _correct(self, word: str) -> str:
        if self.knows(word):
            return word
        near = [w for w in self.vocabulary.known(self.vocabulary.edit_distance_1(word)) if w[0] == word[0]]
        return max(near, key=lambda w: (self.counts[w], w)) if near else word

    def __call__(self, prompt: str) -> str:
        def fix(match: re.Match) -> str:
            typed = match.group()
            word = self.word(typed.lower())
            return typed if word == typed.lower() else (word.capitalize() if typed[0].isupper() else word)
        return WORD.sub(fix, prompt)
