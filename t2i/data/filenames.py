"""Captions from file names, for a folder of images without a caption file.

Clip-art and icon collections name their files after what they show, in folders by topic:
`science/astronomy/saturn_dan_gerhards_01.png`. The caption of such a file is its cleaned name
("saturn"), and the same with its folders ("saturn (science, astronomy)"). Cleaning: underscores
and hyphens become spaces, words with digits go ("star_95pt06step" -> "star"), and so does an
author suffix. Openclipart's exporter names files `<title>_<author>_<NN>`, cut to 24 characters
before the number, so the author is a trailing run of words that many files share; a run of one
to three trailing words shared by at least AUTHOR_MIN_FILES files with different titles, and
seldom inside a title, is taken for an author and removed. A heuristic, imperfect on a title that ends like an author.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
AUTHOR_MIN_FILES = 2


def name_words(stem: str) -> list[str]:
    """The words of a file name, without the ones that hold digits."""
    return [w for w in re.split(r"[_\s]+|(?<=[a-z])-|-(?=[a-z])", stem.lower())
            if w and not re.search(r"\d", w) and re.search(r"[a-z]", w)]


def author_suffixes(stems: list[list[str]]) -> set[tuple[str, ...]]:
    """Trailing runs of 1-3 words that end the names of AUTHOR_MIN_FILES or more files with
    different titles (each keeping at least one word of title), and whose first word is seldom
    a title's: "flag" ends many names but begins as many titles; "nicu" only ends them."""
    titles, in_titles = defaultdict(set), defaultdict(int)
    for words in stems:
        for k in range(1, min(3, len(words) - 1) + 1):
            titles[tuple(words[-k:])].add(tuple(words[:-k]))
        for w in set(words[:-3]):
            in_titles[w] += 1
    return {suffix for suffix, seen in titles.items()
            if len(seen) >= AUTHOR_MIN_FILES and in_titles[suffix[0]] < len(seen)}


def strip_author(words: list[str], authors: set[tuple[str, ...]]) -> list[str]:
    """`words` without their longest author suffix."""
    for k in range(min(3, len(words) - 1), 0, -1):
        if tuple(words[-k:]) in authors:
            return words[:-k]
    return words


def filename_rows(root: Path) -> list[dict]:
    """{"file", "caption"} rows (two captions per image: the title, and the title with its
    folders) for every image under `root`, as a caption file would give them."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    words = [name_words(p.stem) for p in files]
    # Authors are found among the names that were cut (the long ones): titles are not cut.
    authors = author_suffixes([w for p, w in zip(files, words) if len(p.stem) >= 22])
    rows = []
    for path, w in zip(files, words):
        folders = [" ".join(name_words(part)) for part in path.relative_to(root).parts[:-1]]
        folders = [f for f in folders if f]
        title = " ".join(strip_author(w, authors))
        title = title or (folders[-1] if folders else "")
        if not title:
            continue
        name = str(path.relative_to(root))
        rows.append({"file": name, "caption": title})
        if folders:
            rows.append({"file": name, "caption": f"{title} ({', '.join(folders)})"})
    return rows
