"""A tiny WordNet in the database files' format, for the dictionary's tests."""
from pathlib import Path

import pytest

from t2i.text.wordnet import WordNet

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by Princeton\n"


def write_wordnet(folder: Path, synsets: dict[int, tuple[list[str], list[int], str]]) -> Path:
    """A WordNet folder in the database files' format: synsets {offset: (lemmas, hypernym
    offsets, gloss)}; hyponym pointers are added where the hypernyms say."""
    hyponyms: dict[int, list[int]] = {}
    for offset, (_, hypernyms, _) in synsets.items():
        for h in hypernyms:
            hyponyms.setdefault(h, []).append(offset)
    lines, index = [LICENCE], {}
    for offset, (lemmas, hypernyms, gloss) in synsets.items():
        words = " ".join(f"{w.replace(' ', '_')} 0" for w in lemmas)
        pointers = [("@", h) for h in hypernyms] + [("~", h) for h in hyponyms.get(offset, [])]
        ptrs = " ".join(f"{s} {o:08d} n 0000" for s, o in pointers)
        lines.append(f"{offset:08d} 06 n {len(lemmas):02x} {words} {len(pointers):03d} {ptrs} | {gloss}\n")
        for w in lemmas:
            index.setdefault(w.lower().replace(" ", "_"), []).append(offset)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.noun").write_text("".join(lines), encoding="latin-1")
    (folder / "index.noun").write_text(LICENCE + "".join(
        f"{w} n {len(o)} 0 {len(o)} 0 " + " ".join(f"{x:08d}" for x in o) + "\n" for w, o in sorted(index.items())))
    (folder / "noun.exc").write_text("geese goose\n")
    return folder


TINY = {
    1: (["garment"], [], "an article of clothing"),
    2: (["coat"], [1], "an outer garment with sleeves"),
    3: (["parka", "anorak", "windcheater"], [2], "a kind of heavy jacket; \"she wore a parka\""),
    4: (["pool", "kitty"], [], "the combined stakes of the betters"),
    5: (["cat"], [], "a feline mammal"),
    6: (["house cat", "domestic cat"], [5], "a cat kept as a pet"),
    7: (["kitty", "kitty-cat", "puss"], [6], "informal terms for a domestic cat"),
    8: (["hat"], [1], "headdress that protects the head"),
    9: (["goose"], [], "a web-footed bird"),
    10: (["bowler", "derby hat"], [8], "a felt hat that is round and hard with a narrow brim"),
}


@pytest.fixture
def wordnet_folder(tmp_path) -> Path:
    """A folder of WordNet files holding TINY."""
    return write_wordnet(tmp_path / "wordnet", TINY)


@pytest.fixture
def tiny_wordnet(wordnet_folder) -> WordNet:
    return WordNet(wordnet_folder)
