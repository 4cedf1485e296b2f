"""Emoji: a captioned colour dataset that installs offline, drawn from the Noto Color Emoji font.

`data.dataset=emoji` renders every emoji of t2i/assets/emoji.json (1,609: all of Unicode's
fully-qualified emoji but skin-tone variants, components and country flags; made by
scripts/emoji_table.py) with Pillow from the font's 109-pixel colour bitmaps, on white, into
the image cache of captioned.py (`data.image_size`, 32 in the preset). The font is looked for at
`data.font`, else at the usual font paths; Debian and Ubuntu ship it as fonts-noto-color-emoji.

Captions: the emoji's Unicode name and its other names (the `emoji` package's aliases, the
Unicode character name), each in a few templates ("an emoji of a red apple", "red apple
icon"); training draws one at random each time. The label of each image is its group
("Smileys & Emotion", "Food & Drink", ...), which the emoji evaluator judges.

Held out: HELDOUT names colour-object pairs — the green heart, the blue circle — whose colour
and object are both seen in training on other emoji (a blue heart, a green circle) but never
together. They are left out of the training set entirely, so whether "a green heart" draws a
green heart measures that the text steers the image, not memory.

Recolouring (`data.recolour`): most objects come in one colour ("red envelope", "orange book"),
so a colour word is learnt from few objects and the model guesses the colour from the object.
Each emoji whose name gives its colour ("large blue diamond") is added again in every other hue
colour (HUE_COLOURS) its object lacks — its hue turned to that colour's, its captions saying
so ("large purple diamond") — unless that name is a real emoji or contains a held-out pair,
which stay unseen.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..utils.images import circular_mean, from_hsv, to_hsv
from .base import DataError, ImageDataset
from .captioned import open_image_cache

TABLE = Path(__file__).resolve().parent.parent / "assets" / "emoji.json"
FONT_FILE = "NotoColorEmoji.ttf"
FONT_DIRS = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/noto",
             "/usr/share/fonts/google-noto-emoji", "/usr/share/fonts/truetype")
FONT_SIZE = 109  # the size of the font's colour bitmaps; FreeType refuses other sizes
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
           "white", "grey", "gray")
# Colour-object pairs never trained on (see the module doc): each colour and each object
# occurs in training with other partners.
HELDOUT = ("green heart", "brown heart", "blue circle", "red square", "purple square", "orange book")
# The colours a hue rotation can make (brown, pink, black and white need more than a hue).
HUE_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple")
TEMPLATES = ("{n}", "{a} {n}", "an emoji of {a} {n}", "{n} emoji", "{n} icon", "a picture of {a} {n}")


def table() -> list[dict]:
    """The rows of the emoji table: emoji, name, group, subgroup, aliases."""
    return json.loads(TABLE.read_text(encoding="utf-8"))


def groups() -> list[str]:
    """The emoji groups in table order: the labels of the emoji dataset."""
    return list(dict.fromkeys(r["group"] for r in table()))


def display_name(name: str) -> str:
    """A Unicode name as a caption says it: "man: red hair" -> "man, red hair"."""
    return name.replace(": ", ", ").replace("_", " ")


def captions(row: dict) -> list[str]:
    """Every caption of one emoji: its name first, then each name in each template."""
    out = []
    for name in [display_name(row["name"])] + [display_name(a) for a in row["aliases"]]:
        article = "an" if name[:1] in "aeiou" else "a"
        out += [t.format(n=name, a=article) for t in TEMPLATES]
    return list(dict.fromkeys(out))


def colour_words(text: str) -> list[str]:
    """The colour words of a text, in order ("gray" spelt "grey")."""
    words = re.findall(r"[a-z]+", text.lower())
    return [("grey" if w == "gray" else w) for w in words if w in COLOURS]


def colour_families(rows: Optional[list[dict]] = None) -> dict[str, list[str]]:
    """Emoji that differ only in their colour word, by what is left ("heart": red heart, blue
    heart, ...): the colour-object pairs that colour accuracy is measured on."""
    families: dict[str, list[str]] = {}
    for row in rows if rows is not None else table():
        name = row["name"]
        if len(colour_words(name)) == 1 and ":" not in name:  # not "man: red hair"
            rest = re.sub(r"\b(%s)\b" % "|".join(COLOURS), "", name)
            families.setdefault(" ".join(rest.split()), []).append(name)
    return {k: v for k, v in families.items() if len(v) > 1}


def find_font(path: Optional[str] = None) -> Path:
    """The Noto Color Emoji font: `path`, else the first of the usual font paths."""
    candidates = [Path(path).expanduser()] if path else (
        [Path(d) / FONT_FILE for d in FONT_DIRS]
        + [Path.home() / ".local/share/fonts" / FONT_FILE, Path.home() / ".fonts" / FONT_FILE])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = path or ", ".join(FONT_DIRS)
    raise DataError(f"the emoji dataset needs the Noto Color Emoji font ({FONT_FILE}), not found "
                    f"at {where}: install it (Debian/Ubuntu: apt install fonts-noto-color-emoji) "
                    "or point data.font=PATH at it")


def render(glyph: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    """One emoji in colour on a transparent square canvas, centred."""
    left, top, right, bottom = font.getbbox(glyph)
    side = max(right - left, bottom - top, 1)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text(((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top),
                                glyph, font=font, embedded_color=True)
    return canvas


def training_captions(cfg=None) -> list[str]:
    """Every caption of the training emoji (not HELDOUT): the words an emoji model knows."""
    return [c for row in table() if row["name"] not in HELDOUT for c in captions(row)]


def rows_of(caption_lists: list[list[str]]) -> list[dict]:
    """The table row of each emoji's caption list (which starts with its display name)."""
    by_name = {display_name(r["name"]): r for r in table()}
    return [by_name[c[0]] for c in caption_lists]


def _records(cfg):
    """The image-cache source (captioned.open_image_cache) of the emoji table and font."""
    path = find_font(cfg.font)
    font = ImageFont.truetype(str(path), FONT_SIZE)
    rows = table()
    stat = path.stat()
    fingerprint = {"font": [path.name, stat.st_size, stat.st_mtime_ns],
                   "table_sha256": hashlib.sha256(TABLE.read_bytes()).hexdigest()}

    def records():
        for row in rows:
            yield row["name"], lambda g=row["emoji"]: render(g, font), captions(row)
    return len(rows), records(), fingerprint, Counter()


def swap_colour(text: str, old: str, new: str) -> str:
    """`text` with the colour word `old` replaced by `new` (whole words only)."""
    return re.sub(rf"\b{old}\b", new, text)


def recolourings(rows: list[dict]) -> list[tuple[int, str, dict]]:
    """(index into `rows`, colour, the new row) for every recoloured emoji of `rows` (see the
    module doc): names with one hue colour word before their object, each other hue colour
    whose name is neither a real emoji nor holds a held-out pair."""
    real = {r["name"] for r in table()}
    out = []
    for i, row in enumerate(rows):
        name, words = row["name"], colour_words(row["name"])
        if ":" in name or len(words) != 1 or words[0] not in HUE_COLOURS or name.split()[-1] == words[0]:
            continue
        for colour in HUE_COLOURS:
            new = swap_colour(name, words[0], colour)
            if new in real or any(re.search(rf"\b{pair}\b", new) for pair in HELDOUT):
                continue  # also the emoji itself (colour == words[0])
            aliases = [swap_colour(display_name(a), words[0], colour) for a in row["aliases"]
                       if words[0] in colour_words(display_name(a))]
            out.append((i, colour, {**row, "name": new, "aliases": aliases}))
    return out


def dominant_hue(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """The mean hue (degrees) of each image's vivid pixels, from `images.to_hsv`'s three maps."""
    return circular_mean(hue, ((saturation > 0.5) & (value > 0.3)).float(), (1, 2))


def recolour(images: torch.Tensor, rows: list[dict]) -> tuple[torch.Tensor, list[dict]]:
    """The recoloured copies of the uint8 emoji `images` named by `rows`, and their rows. Each
    colour's hue is where that colour's own emoji among `rows` centre (their mean dominant hue),
    so a made "purple book" is as purple as Noto's purple things."""
    hue, saturation, value = to_hsv(images.float() / 127.5 - 1)
    hues = dominant_hue(hue, saturation, value)
    colour_of = [colour_words(r["name"]) for r in rows]
    target = {}
    for colour in HUE_COLOURS:
        own = torch.tensor([w == [colour] for w in colour_of], dtype=torch.bool)
        if own.any():  # (a small data.subset may hold none of a colour: it is not made)
            target[colour] = circular_mean(hues[own], torch.ones(int(own.sum())), 0).item()
    made = [m for m in recolourings(rows) if m[1] in target]
    if not made:
        return images[:0], []
    src = torch.tensor([i for i, _, _ in made])
    shift = torch.tensor([target[c] for _, c, _ in made]) - hues[src]
    out = from_hsv((hue[src] + shift[:, None, None]) % 360, saturation[src], value[src])
    return ((out + 1) * 127.5).round().clamp(0, 255).to(torch.uint8), [r for _, _, r in made]


def load_emoji(cfg, heldout: bool = False, progress: bool = True) -> ImageDataset:
    """The emoji dataset of a `DataConfig`, its labels the group of each emoji: the training
    set (every emoji but HELDOUT; with `data.recolour` the recoloured copies too, before the
    last `data.holdout`, which stay real emoji), or with `heldout` every real emoji (what
    evaluation compares to)."""
    cache = open_image_cache(cfg, progress=progress, source=_records)
    index = {g: i for i, g in enumerate(groups())}
    rows = rows_of(cache.captions)
    keep = [i for i, r in enumerate(rows) if heldout or r["name"] not in HELDOUT]
    keep = keep[:cfg.subset or None]
    images = torch.from_numpy(np.ascontiguousarray(cache.images[keep]))
    rows, texts = [rows[i] for i in keep], [cache.captions[i] for i in keep]
    if cfg.recolour and not heldout:
        # The validation images' colours are not copied; a holdout of them all leaves no copies
        # (and load_dataset says it leaves nothing to train on).
        trained = max(0, len(keep) - cfg.holdout)
        more, made = recolour(images[:trained], rows[:trained])
        images = torch.cat([images[:trained], more, images[trained:]])
        rows = rows[:trained] + made + rows[trained:]
        texts = texts[:trained] + [captions(r) for r in made] + texts[trained:]
    labels = torch.tensor([index[r["group"]] for r in rows])
    return ImageDataset(images, labels, None, texts)
