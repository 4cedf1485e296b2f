"""A reader for the noun part of WordNet 3.0's database files: synsets, their lemmas, glosses
and relations, and the base forms of inflected nouns ("trainers" -> "trainer").

WordNet (Princeton University; its licence lets anyone use, copy and distribute it) is what the
caption bank of Fashion-MNIST is built from (scripts/caption_bank.py) and what a prompt's
unknown words are looked up in (lexicon.py). t2i reads the files of Debian's `wordnet-base`
(/usr/share/wordnet) or of any folder that holds `data.noun`, `index.noun` and `noun.exc`
(NLTK's `corpora/wordnet` is one), named by the environment variable T2I_WORDNET.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

WORDNET = Path("/usr/share/wordnet")
# pointer symbols of the relations used (WordNet's wninput(5WN))
HYPERNYM, HYPONYM, PART_MERONYM = "@", "~", "%p"
# WordNet's detachment rules for regular noun plurals (morphy(7WN)), tried in this order
SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
            ("ies", "y"), ("s", ""))


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


def wordnet_root() -> Optional[Path]:
    """The folder of WordNet's files (T2I_WORDNET, else Debian's), or None if there is none."""
    root = Path(os.environ.get("T2I_WORDNET") or WORDNET)
    return root if (root / "data.noun").is_file() else None


def _lines(path: Path):
    """The records of a WordNet file, its licence header (lines that begin with spaces) skipped."""
    return (line for line in path.read_text(encoding="latin-1").splitlines() if not line.startswith(" "))


def licence(root: Optional[Path] = None) -> str:
    """WordNet's licence and copyright notice, as its files carry it (what a copy of data made
    from WordNet must carry too)."""
    root = root or wordnet_root() or WORDNET
    lines = (root / "data.noun").read_text(encoding="latin-1").splitlines()
    header = [line.strip().split(" ", 1) for line in lines if line.startswith("  ")]
    return " ".join(part[1].strip() for part in header if len(part) == 2 and part[1].strip())


class WordNet:
    """WordNet's nouns. `senses(word)` in WordNet's order (most frequent first)."""

    def __init__(self, root: Optional[Path] = None):
        root = root or wordnet_root()
        if root is None or not (root / "data.noun").is_file():
            raise FileNotFoundError(f"WordNet's data.noun not found in {root or WORDNET}: install Debian's "
                                    "wordnet-base, or set T2I_WORDNET to a folder that holds WordNet 3.0's files")
        self.synsets: dict[int, Synset] = {}
        for line in _lines(root / "data.noun"):
            head, _, gloss = line.partition(" | ")
            f = head.split()
            n_words = int(f[3], 16)
            lemmas = [f[4 + 2 * i].replace("_", " ").split("(")[0] for i in range(n_words)]  # drop markers like (p)
            i = 4 + 2 * n_words
            pointers: dict[str, list[int]] = {}
            for j in range(int(f[i])):
                symbol, target, pos = f[i + 1 + 4 * j], int(f[i + 2 + 4 * j]), f[i + 3 + 4 * j]
                if pos == "n":
                    pointers.setdefault(symbol, []).append(target)
            self.synsets[int(f[0])] = Synset(int(f[0]), lemmas, gloss.strip(), pointers)
        self.index: dict[str, list[int]] = {}
        for line in _lines(root / "index.noun"):
            f = line.split()
            self.index[f[0].replace("_", " ")] = [int(o) for o in f[-int(f[2]):]]
        exc = root / "noun.exc"
        self.exceptions = dict(line.split()[:2] for line in _lines(exc)) if exc.is_file() else {}

    def senses(self, word: str) -> list[Synset]:
        return [self.synsets[o] for o in self.index.get(word.lower().replace("_", " "), [])]

    def base_forms(self, word: str) -> list[str]:
        """The word's forms that WordNet has as nouns: itself, its irregular base ("feet" ->
        "foot"), and what its regular plural endings leave ("trainers" -> "trainer")."""
        word = word.lower()
        forms = [word, self.exceptions.get(word, "")]
        forms += [word[:-len(end)] + base for end, base in SUFFIXES if word.endswith(end) and len(word) > len(end) + 1]
        return [w for w in dict.fromkeys(forms) if w and w in self.index]

    def related(self, synset: Synset, symbol: str) -> list[Synset]:
        return [self.synsets[o] for o in synset.pointers.get(symbol, [])]

    def hyponyms(self, synset: Synset, depth: int = 1) -> list[Synset]:
        out, frontier = [], [synset]
        for _ in range(depth):
            frontier = [h for s in frontier for h in self.related(s, HYPONYM)]
            out += frontier
        return out


@lru_cache(maxsize=2)
def load_wordnet(root: Optional[Path] = None) -> Optional[WordNet]:
    """WordNet read once per process (1-2 s), or None where it is not installed."""
    root = root or wordnet_root()
    return WordNet(root) if root else None
