"""A reader for the noun part of WordNet 3.0's database files (Debian's `wordnet-base`):
synsets, their lemmas, glosses and the relations the caption bank uses. Enough for
scripts/caption_bank.py; not part of the t2i package (training never needs WordNet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

WORDNET = Path("/usr/share/wordnet")
# pointer symbols of the relations used (WordNet's wninput(5WN))
HYPERNYM, HYPONYM, PART_MERONYM = "@", "~", "%p"


@dataclass
class Synset:
    offset: int
    lemmas: list[str]
    gloss: str
    pointers: dict[str, list[int]] = field(default_factory=dict)

    @property
    def definition(self) -> str:
        """The gloss without its quoted examples."""
        return self.gloss.split('; "')[0].split(';')[0].strip()


class WordNet:
    def __init__(self, root: Path = WORDNET):
        data = root / "data.noun"
        if not data.is_file():
            raise FileNotFoundError(f"{data} not found: install Debian's wordnet-base")
        self.synsets: dict[int, Synset] = {}
        for line in data.read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            f = head.split()
            n_words = int(f[3], 16)
            lemmas = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            lemmas = [w.split("(")[0] for w in lemmas]  # drop adjective markers like (p)
            i = 4 + 2 * n_words
            pointers: dict[str, list[int]] = {}
            for j in range(int(f[i])):
                symbol, target, pos = f[i + 1 + 4 * j], int(f[i + 2 + 4 * j]), f[i + 3 + 4 * j]
                if pos == "n":
                    pointers.setdefault(symbol, []).append(target)
            self.synsets[int(f[0])] = Synset(int(f[0]), lemmas, gloss.strip(), pointers)
        self.index: dict[str, list[int]] = {}
        for line in (root / "index.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            f = line.split()
            n_synsets = int(f[2])
            self.index[f[0].replace("_", " ")] = [int(o) for o in f[-n_synsets:]]

    def senses(self, word: str) -> list[Synset]:
        return [self.synsets[o] for o in self.index.get(word.lower(), [])]

    def related(self, synset: Synset, symbol: str) -> list[Synset]:
        return [self.synsets[o] for o in synset.pointers.get(symbol, [])]

    def hyponyms(self, synset: Synset, depth: int = 1) -> list[Synset]:
        out, frontier = [], [synset]
        for _ in range(depth):
            frontier = [h for s in frontier for h in self.related(s, HYPONYM)]
            out += frontier
        return out
