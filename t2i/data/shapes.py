"""Shapes: coloured shapes on white, drawn on the fly, with captions that are exactly true.

A world small enough to judge exactly (evaluation/shapes.py) and to train on a CPU in minutes,
made to measure composition — colour bound to the right object, counts, left/right/above/below
— the way GenEval measures it on real models. Scene i of `data.scene_seed` is the same on
every machine and in every run: its random numbers come from (scene_seed, i) alone.

The spec (at 32x32; `data.image_size` scales every length):
- white canvas; five flat-filled, axis-aligned shapes: circle, square, triangle (pointing up,
  flat base at the bottom), diamond (a square turned 45 degrees), cross (a plus sign whose bars
  are a third of its size thick);
- six colours, saturation and value >= 0.75, hue within 6 degrees of COLOURS';
- small objects span 6-8 px, large ones 11-14 px;
- 1-4 objects, never touching (their boxes at least 2 px apart), inside the canvas;
- "A to the left of B": A's centre at least 6 px left of B's, the horizontal offset larger than
  the vertical one (likewise right of, above, below);
- "two/three/four {shape}s": exactly that many of that shape and no other shape;
- HELDOUT colour-shape pairs appear in no training image or caption (each colour and each
  shape still appears in other pairs).
Each scene has several captions, every one complete: an image shows what its caption says and
no object it leaves out (a caption may leave out colours or sizes, never objects).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .base import ImageDataset

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds",
           "cross": "crosses"}
COLOURS = {"red": 0.0, "orange": 30.0, "yellow": 55.0, "green": 130.0, "blue": 220.0, "purple": 280.0}
HELDOUT = (("purple", "triangle"), ("green", "square"), ("red", "cross"), ("blue", "diamond"),
           ("yellow", "circle"))
SIZES = {"small": (6, 8), "large": (11, 14)}
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
# relation -> (axis: 0 x, 1 y; sign of B's centre minus A's along it) for "A <relation> B"
RELATIONS = {"to the left of": (0, 1), "to the right of": (0, -1), "above": (1, 1), "below": (1, -1)}
INVERSE = {"to the left of": "to the right of", "to the right of": "to the left of",
           "above": "below", "below": "above"}
MIN_OFFSET = 6  # px at 32x32 between the centres of a relation's objects, along its axis
GAP = 2  # px at 32x32 between two objects' boxes
BASE = 32  # the side every length above is given at
# Scene kinds and how often each is drawn (single objects, two objects, counting, position).
KINDS = {"single": 0.2, "pair": 0.3, "count": 0.25, "position": 0.25}
MAX_TRIES = 200


def pick(rng: np.random.Generator, options):
    """One of `options`, uniformly (rng.choice converts them to an array each call: slow)."""
    return options[int(rng.integers(len(options)))]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@functools.lru_cache(maxsize=None)
def shape_mask(shape: str, width: int, height: int, supersample: int = 4) -> np.ndarray:
    """The pixels of `shape` filling a width x height box: a pixel is in where at least half of
    it is (measured on a `supersample`-times finer grid), so shapes keep their geometry."""
    s = supersample
    ys, xs = np.mgrid[0:height * s, 0:width * s]
    u = (xs + 0.5) / (width * s) * 2 - 1  # -1..1 across the box
    v = (ys + 0.5) / (height * s) * 2 - 1  # -1 at the top, 1 at the bottom
    if shape == "circle":
        inside = u ** 2 + v ** 2 <= 1
    elif shape == "square":
        inside = np.ones_like(u, dtype=bool)
    elif shape == "diamond":
        inside = np.abs(u) + np.abs(v) <= 1
    elif shape == "triangle":  # apex at the top centre, base along the bottom
        inside = np.abs(u) <= (v + 1) / 2
    elif shape == "cross":
        inside = (np.abs(u) <= 1 / 3) | (np.abs(v) <= 1 / 3)
    else:
        raise ValueError(f"unknown shape {shape!r}; one of {list(SHAPES)}")
    mask = inside.reshape(height, s, width, s).mean(axis=(1, 3)) >= 0.5
    mask.flags.writeable = False  # cached: shared by every caller
    return mask


def colour_rgb(colour: str, rng: np.random.Generator) -> np.ndarray:
    """An RGB triple (0-255) of `colour`: its hue within 6 degrees, saturation and value >= 0.75.
    The formula of `utils.images.from_hsv` (same values), in numpy on one pixel: the torch call
    costs ~60 us, which would double the time a scene takes to draw."""
    hue = (COLOURS[colour] + rng.uniform(-6, 6)) % 360
    sat, val = rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0)
    k = np.array([(n + hue / 60) % 6 for n in (5, 3, 1)])
    rgb = val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)
    return np.round(rgb * 255).astype(np.uint8)


def offsets(a, b, relation: str):
    """(along, across) of centres a = (x, y) and b for "A <relation> B": how far B lies from A in
    the direction the relation names (positive where it holds) and the distance across it.
    Numbers or arrays; the dataset places objects and the judge checks them by this."""
    axis, sign = RELATIONS[relation]
    return (b[axis] - a[axis]) * sign, abs(b[1 - axis] - a[1 - axis])


class Scene:
    """Objects on a canvas: each (shape, colour, size word, x0, y0, side) with its box's top-left
    corner; `captions` are filled in by the scene's kind."""

    def __init__(self, side: int):
        self.side = side
        self.objects: list[tuple[str, str, str, int, int, int]] = []
        self.captions: list[str] = []

    def centre(self, i: int) -> tuple[float, float]:
        _, _, _, x0, y0, s = self.objects[i]
        return x0 + s / 2, y0 + s / 2

    def place(self, rng: np.random.Generator, shape: str, colour: str, size: str,
              near: Optional[tuple[int, str]] = None) -> bool:
        """Put an object where it fits: inside, clear of the others; with `near` = (index,
        relation), where it stands in that relation to object `index` (it is "B" of "A rel B",
        A being object `index`). False where no place was found."""
        scale = self.side / BASE
        lo, hi = SIZES[size]
        s = int(round(rng.integers(lo, hi + 1) * scale))
        gap = max(1, round(GAP * scale))
        # MAX_TRIES candidate corners at once; the first that fits is taken.
        x0, y0 = rng.integers(1, self.side - s, size=(2, MAX_TRIES))
        fits = np.ones(MAX_TRIES, dtype=bool)
        for _, _, _, ox, oy, os in self.objects:
            fits &= ~((x0 < ox + os + gap) & (ox < x0 + s + gap) & (y0 < oy + os + gap) & (oy < y0 + s + gap))
        if near is not None:
            fits &= self.relates((x0 + s / 2, y0 + s / 2), near)
        if not fits.any():
            return False
        i = int(fits.argmax())
        self.objects.append((shape, colour, size, int(x0[i]), int(y0[i]), s))
        return True

    def relates(self, b, near):
        """Whether centre(s) `b` = (x, y) stand where "A <relation> B" holds, A being object
        `near[0]` (numbers or arrays of candidates)."""
        index, relation = near
        along, across = offsets(self.centre(index), b, relation)
        return (along >= MIN_OFFSET * self.side / BASE) & (along > across)

    def render(self, rng: np.random.Generator) -> np.ndarray:
        """The scene as uint8 RGB [3, side, side] on white."""
        image = np.full((self.side, self.side, 3), 255, dtype=np.uint8)
        for shape, colour, _, x0, y0, s in self.objects:
            image[y0:y0 + s, x0:x0 + s][shape_mask(shape, s, s)] = colour_rgb(colour, rng)
        return image.transpose(2, 0, 1)


def phrase(shape: str, colour: str | None = None, size: str | None = None) -> str:
    """ "a small red circle", "a circle", ... """
    words = [w for w in (size, colour, shape) if w]
    return f"{article(words[0])} {' '.join(words)}"


def allowed(colour: str, shape: str) -> bool:
    return (colour, shape) not in HELDOUT


def draw_object(rng: np.random.Generator, shapes=SHAPES, colours=tuple(COLOURS)) -> tuple[str, str]:
    """A random (shape, colour) pair that is not held out."""
    while True:
        shape, colour = pick(rng, shapes), pick(rng, colours)
        if allowed(colour, shape):
            return shape, colour


def size_word(rng: np.random.Generator, size: str) -> str:
    return pick(rng, SIZE_WORDS[size])


def single(scene: Scene, rng: np.random.Generator) -> bool:
    shape, colour = draw_object(rng)
    size = pick(rng, tuple(SIZES))
    if not scene.place(rng, shape, colour, size):
        return False
    word = size_word(rng, size)
    scene.captions = [phrase(shape, colour), phrase(shape, colour, word), f"one {colour} {shape}",
                      phrase(shape), phrase(shape, None, word)]
    return True


def pair(scene: Scene, rng: np.random.Generator) -> bool:
    """Two objects of different shapes (their colours often differ): "a red circle and a blue
    square", and where they happen to stand so, "... to the left of ..."."""
    a = draw_object(rng)
    b = draw_object(rng, shapes=tuple(s for s in SHAPES if s != a[0]))
    for shape, colour in (a, b):
        if not scene.place(rng, shape, colour, pick(rng, tuple(SIZES))):
            return False
    (sa, ca, za), (sb, cb, zb) = (o[:3] for o in scene.objects)
    scene.captions = [f"{phrase(sa, ca)} and {phrase(sb, cb)}", f"{phrase(sb, cb)} and {phrase(sa, ca)}",
                      f"{phrase(sa)} and {phrase(sb)}",
                      f"{phrase(sa, ca, size_word(rng, za))} and {phrase(sb, cb, size_word(rng, zb))}"]
    for relation in RELATIONS:
        if scene.relates(scene.centre(1), (0, relation)):
            scene.captions.append(f"{phrase(sa, ca)} {relation} {phrase(sb, cb)}")
    return True


def count(scene: Scene, rng: np.random.Generator) -> bool:
    """Two to four objects of one shape: "three red circles", or "three circles" when their
    colours differ."""
    n = int(rng.integers(2, 5))
    shape = pick(rng, SHAPES)
    palette = [c for c in COLOURS if allowed(c, shape)]
    same = rng.random() < 0.5
    first = pick(rng, palette)
    for _ in range(n):
        colour = first if same else pick(rng, palette)
        if not scene.place(rng, shape, colour, pick(rng, tuple(SIZES))):
            return False
    colours = {o[1] for o in scene.objects}
    plural = PLURALS[shape]
    scene.captions = [f"{NUMBERS[n]} {plural}", f"{NUMBERS[n]} {plural} on a white background"]
    if len(colours) == 1:
        scene.captions = [f"{NUMBERS[n]} {colours.pop()} {plural}"] + scene.captions
    return True


def position(scene: Scene, rng: np.random.Generator) -> bool:
    """Two objects of different shapes in a drawn relation: "a red circle above a blue square",
    also said the other way round and without colours."""
    relation = pick(rng, tuple(RELATIONS))
    a = draw_object(rng)
    b = draw_object(rng, shapes=tuple(s for s in SHAPES if s != a[0]))
    if not scene.place(rng, a[0], a[1], pick(rng, tuple(SIZES))):
        return False
    if not scene.place(rng, b[0], b[1], pick(rng, tuple(SIZES)), near=(0, relation)):
        return False
    (sa, ca), (sb, cb) = a, b
    scene.captions = [f"{phrase(sa, ca)} {relation} {phrase(sb, cb)}",
                      f"{phrase(sb, cb)} {INVERSE[relation]} {phrase(sa, ca)}",
                      f"{phrase(sa)} {relation} {phrase(sb)}",
                      f"{phrase(sb)} {INVERSE[relation]} {phrase(sa)}"]
    return True


BUILDERS = {"single": single, "pair": pair, "count": count, "position": position}


def scene_mix(text: str) -> dict[str, float]:
    """`data.scene_mix` read: "position=3,pair=1" -> {"position": 3.0, "pair": 1.0} (kinds left
    out are not drawn); "" -> KINDS."""
    if not text.strip():
        return dict(KINDS)
    try:
        mix = {name.strip(): float(weight) for name, _, weight in (p.partition("=") for p in text.split(","))}
    except ValueError:
        mix = {}
    if not mix or set(mix) - set(KINDS) or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"data.scene_mix={text!r}: give weights >= 0, not all 0, as "
                         f"kind=weight[,kind=weight...] with kinds from {sorted(KINDS)}")
    return mix


def scene(index: int, seed: int = 0, side: int = BASE,
          mix: dict[str, float] = KINDS) -> tuple[np.ndarray, list[str], Scene]:
    """Scene `index` of `seed`: its image (uint8 [3, side, side]), its captions, the scene;
    its kind is drawn by the weights of `mix`."""
    rng = np.random.default_rng([seed, index])
    kinds, edges = list(mix), np.cumsum(list(mix.values()))
    while True:  # a scene that found no room is drawn again, from the same stream
        kind = kinds[min(int(np.searchsorted(edges, rng.random() * edges[-1], side="right")), len(kinds) - 1)]
        drawn = Scene(side)
        if BUILDERS[kind](drawn, rng):
            return drawn.render(rng), drawn.captions, drawn


def load_shapes(cfg, progress: bool = True) -> ImageDataset:
    """`data.scenes` scenes (the first `data.subset` if set) of `data.scene_seed`, of the kinds
    of `data.scene_mix`, at `data.image_size`, captioned; labels are -1 (captioned, not
    class-labelled)."""
    n = min(cfg.subset or cfg.scenes, cfg.scenes)
    mix = scene_mix(cfg.scene_mix)
    rows = range(n)
    if progress:
        from tqdm.auto import tqdm
        rows = tqdm(rows, desc="drawing shapes", unit="scene", leave=False)
    images, captions = [], []
    for i in rows:
        image, texts, _ = scene(i, cfg.scene_seed, cfg.image_size, mix)
        images.append(image)
        captions.append(texts)
    return ImageDataset(torch.from_numpy(np.stack(images)), torch.full((n,), -1), None, captions)


VOCABULARY_SCENES = 300  # scenes whose captions hold every word the shapes captions use


def training_captions(cfg) -> list[str]:
    """The captions of the first scenes of `data.scene_seed`: the words a shapes model knows."""
    return [c for i in range(VOCABULARY_SCENES) for c in scene(i, cfg.scene_seed, BASE)[1]]


@dataclass(frozen=True)
class Thing:
    """One object a caption names: its shape, and its colour and size where the caption says."""

    shape: str
    colour: Optional[str] = None
    size: Optional[str] = None  # "small" | "large"


@dataclass(frozen=True)
class Meaning:
    """What a caption asks for: one thing, two things (with a relation "A <relation> B" or
    not), or exactly `count` of one thing."""

    things: tuple[Thing, ...]
    count: Optional[int] = None
    relation: Optional[str] = None


_SIZE_OF = {w: size for size, words in SIZE_WORDS.items() for w in words}
_NUMBER_OF = {w: n for n, w in NUMBERS.items() if n > 1}
_SHAPE_OF = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
_RELATION = re.compile(r"^(.+?) (%s) (.+)$" % "|".join(RELATIONS))


def _thing(text: str) -> Optional[Thing]:
    words = text.split()
    if len(words) < 2 or words[0] not in ("a", "an", "one") or words[-1] not in SHAPES:
        return None
    size = colour = None
    for w in words[1:-1]:
        if w in _SIZE_OF and size is None and colour is None:
            size = _SIZE_OF[w]
        elif w in COLOURS and colour is None:
            colour = w
        else:
            return None
    return Thing(words[-1], colour, size)


def parse(caption: str) -> Optional[Meaning]:
    """The meaning of a caption in the shapes grammar (every training caption has one), or None
    for text outside it."""
    text = " ".join(caption.lower().replace(" on a white background", "").split())
    words = text.split()
    if len(words) in (2, 3) and words[0] in _NUMBER_OF and words[-1] in PLURALS.values():
        colour = words[1] if len(words) == 3 else None
        if colour is not None and colour not in COLOURS:
            return None
        return Meaning((Thing(_SHAPE_OF[words[-1]], colour),), count=_NUMBER_OF[words[0]])
    match = _RELATION.match(text)
    if match:
        a, b = _thing(match.group(1)), _thing(match.group(3))
        return Meaning((a, b), relation=match.group(2)) if a and b else None
    if " and " in text:
        a, b = (_thing(part) for part in text.split(" and ", 1))
        return Meaning((a, b)) if a and b else None
    thing = _thing(text)
    return Meaning((thing,)) if thing else None


def render_meaning(meaning: Meaning, rng: np.random.Generator, side: int = BASE) -> np.ndarray:
    """An image that shows exactly what `meaning` asks for (what the caption leaves open drawn
    at random), held-out pairs included: the real-data side of the judge."""
    for _ in range(MAX_TRIES):
        drawn = Scene(side)
        things = meaning.things * (meaning.count or 1)
        ok = True
        for i, thing in enumerate(things):
            colour = thing.colour or pick(rng, tuple(COLOURS))
            size = thing.size or pick(rng, tuple(SIZES))
            near = (0, meaning.relation) if meaning.relation and i == 1 else None
            ok = ok and drawn.place(rng, thing.shape, colour, size, near=near)
        if ok:
            return drawn.render(rng)
    raise ValueError(f"no room to draw {meaning}")
