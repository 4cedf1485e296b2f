"""Reading a prompt's unknown words in a dictionary before the model sees them.

A model knows the words of its training captions. A word they never use reaches it only through
the text encoder, and a small encoder reads a rare word by its word pieces: MiniLM splits
"anorak" into "an" + "##ora" + "##k" and "hoodie" into "hood" + "##ie", and puts "a hoodie" no
nearer a sweatshirt than a shoe. People look such words up, and so does this: an unknown word is
looked up in WordNet 3.0 (wordnet.py) and in t2i's supplement to it (t2i/assets/lexicon.json:
words WordNet lacks, "hoodie", "jandal", or has only in another sense, British "trainers"), and
replaced by the nearest words the captions use:
- the word's own synonyms in one of its senses, else that sense's hypernyms up to `MAX_DEPTH`
  levels ("anorak" -> "parka", "pussycat" -> "house cat" -> "cat");
- a supplement word by its meaning ("hoodie" -> "hooded sweatshirt"), itself read the same way;
- among several senses ("kitty": a pool of bets, or a cat), the text encoder picks the reading
  whose rewritten prompt it puts nearest the prompt as typed: its own loose idea of the word
  decides between the dictionary's meanings.
Which words: those the captions never use (in any inflection WordNet knows: "sneakers" is
"sneaker"), three letters or longer. A supplement word, or one the encoder splits into pieces,
is always read. A word the encoder has whole it knows, and rewriting it by a hypernym
("christmas" -> "season") or a relative ("walk" -> "walking") loses more than it gains: it is
read only where it is the prompt's head word (what the prompt asks for: "kitty" in "a kitty
with a hat") and the encoder agrees with the dictionary, the cosine of the word and its
reading, each alone, at least `AGREEMENT` (MiniLM: "kitty" and "cat" 0.84, "puppy" and "dog"
0.80; "christmas" and "season" 0.55, "reindeer" and "deer" 0.59, "violet" and "purple" 0.59).

A class-labelled model draws only its classes. Where the word that says what a prompt is (the
last word before its first modifier: "hat" in "a wool hat for winter") reads only as a caption
word that several classes share ("hat" -> headdress -> "wear"), and none of its own kinds is a
caption word either (a fedora, a bowler: "outerwear" has "gown" among its kinds, so it is a
word for some of the classes), the prompt asks for a kind of thing that none of the classes is:
the word is not rewritten, and its reading says so ("hat: a kind of wear that no class's
captions name"); the model then draws the prompt's nearest class, as `--explain` shows.
What the dictionary cannot read is left to spelling (spelling.py: "jaket" -> "jacket"). Without
WordNet installed only the supplement is used, and `Reader.missing` says so.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Callable, Optional, Sequence

from .wordnet import HYPERNYM, Synset, WordNet, load_wordnet

MAX_DEPTH = 2  # hypernym levels climbed from a sense: "pussycat" -> "house cat" -> "cat"
MAX_READINGS = 8  # candidate readings of one word compared by the encoder
AGREEMENT = 0.7  # the encoder's cosine of a whole word and its reading that lets it be read
SHARED = 0.5  # a caption word no class holds more than this share of is shared: no class is one
TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")
# Where an English noun phrase's modifiers begin: "a smart shirt | for a wedding".
MODIFIER = re.compile(r"\b(?:for|with|to|that|which|from|in|on|at|made|you|when|without|by|while|so)\b", re.I)


# Words that stand for a thing without naming it: "something cosy" names nothing.
PRONOUNS = {"something", "anything", "what", "one", "thing", "things"}


def head_word(prompt: str) -> Optional[str]:
    """The last word before the prompt's first modifier: what the prompt says it is (None where
    that part begins with a pronoun: "something cosy | to pull over your head")."""
    words = [w.lower() for w in TOKEN.findall(MODIFIER.split(prompt, maxsplit=1)[0])]
    words = [w for w in words if w not in ("a", "an", "the")]
    return words[-1] if words and words[0] not in PRONOUNS else None


@lru_cache(maxsize=1)
def supplement() -> dict[str, str]:
    """t2i's supplement to WordNet: word -> its meaning in WordNet's words."""
    return json.loads((resources.files("t2i") / "assets" / "lexicon.json").read_text())["words"]


@dataclass(frozen=True)
class WordReading:
    """How one unknown word was read: `read_as` replaces `word` in the prompt ("" where nothing
    does: a kind of thing no class is); `how`: "another word for", "a kind of", "means", or
    "a kind of X that no class's captions name"; `gloss`: the dictionary's definition."""
    word: str
    read_as: str
    how: str
    gloss: str = ""

    def __str__(self) -> str:
        gloss = f": {self.gloss}" if self.gloss else ""
        if not self.read_as:
            return f"{self.word}: {self.how}{gloss}"
        return f"{self.word} -> {self.read_as} ({self.how}{gloss})"


def plural(phrase: str) -> str:
    """The phrase with its last word in the plural ("flip-flop" -> "flip-flops")."""
    if phrase.endswith(("ss", "x", "z", "ch", "sh")):
        return phrase + "es"
    if phrase.endswith("y") and phrase[-2:-1] not in "aeiou":
        return phrase[:-1] + "ies"
    return phrase if phrase.endswith("s") else phrase + "s"


def rewrite(prompt: str, word: str, read_as: str) -> str:
    """The prompt with `word` replaced by `read_as`, an article before it fitted ("an anorak" ->
    "a parka")."""
    def swap(m: re.Match) -> str:
        if not m.group(1):
            return read_as
        article = "an" if read_as[:1].lower() in "aeiou" else "a"
        return (article.capitalize() if m.group(1)[0].isupper() else article) + " " + read_as
    return re.sub(rf"\b(?:(an?|An?) )?{re.escape(word)}\b", swap, prompt)


class Reader:
    """`reader(prompt)` -> (the prompt with its unknown words replaced, their `WordReading`s).

    `captions`: the training captions (their words are what the model knows) and `labels`, each
    caption's class where the data has classes; `one_token(word)`: whether the text encoder has
    the word whole; `closeness(a, b)`: the encoder's cosine of each text in `a` with the one
    beside it in `b` (picks among senses; None: WordNet's first sense wins)."""

    def __init__(self, captions: Sequence[str], labels: Optional[Sequence[int]] = None,
                 one_token: Callable[[str], bool] = lambda word: False,
                 closeness: Optional[Callable[[list[str], list[str]], list[float]]] = None,
                 wordnet: Optional[WordNet] = None):
        self.counts = Counter(w.lower() for c in captions for w in TOKEN.findall(c))
        self.phrases = [f" {c.lower()} " for c in captions]  # multi-word lemmas are looked for in these
        self.shared = self._shared_words(captions, labels) if labels is not None else set()
        self.one_token, self.closeness = one_token, closeness
        self.wordnet = wordnet if wordnet is not None else load_wordnet()
        self.missing = None if self.wordnet else "WordNet (install Debian's wordnet-base, or set T2I_WORDNET)"
        self._memo: dict[tuple[str, str], Optional[WordReading]] = {}

    @staticmethod
    def _shared_words(captions: Sequence[str], labels: Sequence[int]) -> set[str]:
        """Caption words that no class holds more than a `SHARED` share of ("clothing", "footwear")."""
        per_class: dict[str, Counter] = {}
        for c, label in zip(captions, labels):
            for w in set(TOKEN.findall(c.lower())):
                per_class.setdefault(w, Counter())[label] += 1
        return {w for w, n in per_class.items() if max(n.values()) <= SHARED * sum(n.values())}

    def knows(self, word: str) -> bool:
        """Whether the captions use the word, in any inflection (or it is too short to look up)."""
        word = word.lower()
        if len(word) < 3 or word in self.counts:
            return True
        return bool(self.wordnet) and any(f in self.counts for f in self.wordnet.base_forms(word))

    def _said(self, phrase: str) -> bool:
        """Whether the captions use a phrase (a multi-word lemma must occur whole)."""
        phrase = phrase.lower()
        if " " in phrase:
            return any(f" {phrase} " in c for c in self.phrases)
        return phrase in self.counts

    def _climb(self, sense: Synset) -> Optional[tuple[str, str, str]]:
        """(words, how, gloss): the sense's own lemma the captions use most, else that of its
        nearest hypernym that they use."""
        level, how = [sense], "another word for"
        for _ in range(MAX_DEPTH + 1):
            found = [lemma.lower() for s in level for lemma in s.lemmas if self._said(lemma)]
            if found:
                return max(found, key=lambda w: (self.counts[w.split()[-1]], -len(w))), how, sense.definition
            level = [h for s in level for h in self.wordnet.related(s, HYPERNYM)]
            how = "a kind of"
        return None

    def candidates(self, word: str) -> list[tuple[str, str, str, bool]]:
        """(words, how, gloss, plural) for every reading of an unknown lower-case word: a
        supplement word's meaning first, then its WordNet senses in WordNet's order; `plural`:
        the word was read from its singular ("jandals" from "jandal")."""
        out: list[tuple[str, str, str, bool]] = []
        forms = [word, *(self.wordnet.base_forms(word) if self.wordnet else [])]
        forms += [word[:-1]] if word.endswith("s") and not word.endswith("ss") else []
        for form in dict.fromkeys(forms):
            if form in supplement():
                means = supplement()[form]
                out.append((" ".join(self._caption_word(w) for w in means.split()), "means", means, form != word))
            for sense in self.wordnet.senses(form) if self.wordnet else []:
                if reading := self._climb(sense):
                    out.append((*reading, form != word))
        first: dict[str, tuple[str, str, str, bool]] = {}
        for c in out:  # one reading per wording, the first found (the supplement's before WordNet's)
            first.setdefault(c[0], c)
        return list(first.values())[:MAX_READINGS]

    def _has_kinds_said(self, word: str) -> bool:
        """Whether a kind of the word (a hyponym, `MAX_DEPTH` + 1 levels down) is a caption word
        that is not shared: the word then names a group that holds some of the classes."""
        senses = [s for form in self.wordnet.base_forms(word) for s in self.wordnet.senses(form)] if self.wordnet else []
        kinds = [lemma for s in senses for h in self.wordnet.hyponyms(s, MAX_DEPTH + 1) for lemma in h.lemmas]
        return any(self._said(k) and k.lower().split()[-1] not in self.shared for k in kinds)

    def _caption_word(self, word: str) -> str:
        """A word of a supplement meaning as the captions say it: itself if they use it, else its
        first WordNet reading."""
        if self.knows(word) or not self.wordnet:
            return word
        found = [r for s in self.wordnet.senses(word) if (r := self._climb(s))]
        return found[0][0] if found else word

    def word(self, word: str, prompt: str) -> Optional[WordReading]:
        """The reading of one word of `prompt` (None: known, or nothing to say)."""
        key = (word.lower(), prompt)
        if key not in self._memo:
            self._memo[key] = None if self.knows(word) else self._read(word, prompt)
        return self._memo[key]

    def _read(self, word: str, prompt: str) -> Optional[WordReading]:
        found = self.candidates(word.lower())
        usable = [c for c in found if c[0].split()[-1] not in self.shared]
        if not usable:
            if found and word.lower() == head_word(prompt) and not self._has_kinds_said(word.lower()):
                return WordReading(word, "", f"a kind of {found[0][0]} that no class's captions name", found[0][2])
            return None
        if any(how == "means" for _, how, _, _ in found) or not self.one_token(word.lower()):
            return self._pick(word, prompt, usable)
        if self.closeness and word.lower() == head_word(prompt):  # a whole word: what is asked for, agreed
            agree = self.closeness([word.lower()] * len(usable), [c[0] for c in usable])
            agreed = [c for c, a in zip(usable, agree) if a >= AGREEMENT]
            return self._pick(word, prompt, agreed) if agreed else None
        return None

    def _pick(self, word: str, prompt: str, found: list[tuple[str, str, str, bool]]) -> WordReading:
        texts = [plural(w) if was_plural else w for w, _, _, was_plural in found]
        best = 0
        if len(found) > 1 and self.closeness:
            rewritten = [rewrite(prompt, word, t) for t in texts]
            scores = self.closeness([prompt] * len(rewritten), rewritten)
            best = max(range(len(found)), key=lambda i: scores[i])
        return WordReading(word, texts[best], found[best][1], found[best][2])

    def __call__(self, prompt: str) -> tuple[str, list[WordReading]]:
        readings = [r for w in dict.fromkeys(TOKEN.findall(prompt)) if (r := self.word(w, prompt))]
        for r in readings:
            if r.read_as:
                prompt = rewrite(prompt, r.word, r.read_as)
        return prompt, readings
