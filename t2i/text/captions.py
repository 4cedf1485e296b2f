"""Captions for class-labelled datasets.

A labelled dataset (Fashion-MNIST, MNIST, CIFAR-10) becomes a captioned one through its
`Classes`: every class has a name, synonyms and caption templates, and each training example
gets one caption drawn at random from its class's `training_captions` ("a photo of a sneaker",
"running shoes", ...). Each class also has hand-written paraphrases that are never trained on:
images generated from them measure whether a pretrained text encoder carries the model to
phrasings it has not seen. Fashion-MNIST has two such sets: `heldout` (3 per class, the first)
and `paraphrases` (15 per class, in t2i/assets/fashion-mnist-paraphrases.json with their
provenance), now development sets of the caption bank and the dictionary reading; and `rare`,
6 rare garment words per class (t2i/assets/fashion-mnist-rare-words.json), written before
either and never tuned on.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from importlib import resources

# "{a}" becomes "a" or "an" to suit the name that follows.
PHOTO_TEMPLATES = ("{name}", "{a} {name}", "a photo of {a} {name}", "a picture of {a} {name}",
                   "an image of {a} {name}", "a drawing of {a} {name}")


def normalize_prompt(prompt: str) -> str:
    """Lower-case, trim punctuation at the ends, and collapse whitespace."""
    return re.sub(r"\s+", " ", prompt.strip().lower()).strip(" .!?,;:")


def caption(name: str, template: str) -> str:
    name = name.lower()
    return template.format(a="an" if name[0] in "aeiou" else "a", name=name)


def asset_prompts(filename: str, names: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Per-class prompts from a JSON asset of t2i ({"classes": {name: [prompt, ...]}}), in the
    order of `names`."""
    data = json.loads((resources.files("t2i") / "assets" / filename).read_text())
    missing = set(names) - set(data["classes"])
    if missing:
        raise ValueError(f"{filename} lacks prompts for {sorted(missing)}")
    return tuple(tuple(data["classes"][n]) for n in names)


@dataclass(frozen=True)
class Classes:
    """A labelled dataset's classes: names, synonyms, caption templates and held-out paraphrases."""
    names: tuple[str, ...]  # display names, one per label
    synonyms: tuple[tuple[str, ...], ...]  # other words for each class (the name always counts)
    heldout: tuple[tuple[str, ...], ...]  # paraphrases never used in training
    templates: tuple[str, ...] = PHOTO_TEMPLATES
    paraphrases: tuple[tuple[str, ...], ...] = ()  # a second, larger held-out set (if any)
    rare: tuple[tuple[str, ...], ...] = ()  # rare words for each class, never tuned on (if any)
    bank_file: str = ""  # the asset holding the caption bank (data.captions=bank), if any
    bank: tuple[tuple[str, ...], ...] = ()  # per class: extra training captions, once loaded

    def with_bank(self) -> "Classes":
        """These classes trained on their caption bank as well as the templates: hundreds of
        captions per class made from WordNet by scripts/caption_bank.py."""
        if not self.bank_file:
            raise ValueError("data.captions=bank: this dataset has no caption bank (Fashion-MNIST has)")
        return dataclasses.replace(self, bank=asset_prompts(self.bank_file, self.names))

    def photo_captions(self) -> "Classes":
        """These classes captioned "a photo of a {name}" and nothing else (data.captions=photo:
        the educational design's CIFAR-10 captions, exactly)."""
        return dataclasses.replace(self, synonyms=((),) * len(self.names), templates=("a photo of {a} {name}",))

    def __len__(self) -> int:
        return len(self.names)

    def template_captions(self) -> list[list[str]]:
        """Per class: every template applied to the name and each synonym, without repeats."""
        return [list(dict.fromkeys(caption(word, t) for word in (name, *extra) for t in self.templates))
                for name, extra in zip(self.names, self.synonyms)]

    def training_captions(self) -> list[list[str]]:
        """Per class: its template captions, then the bank (if loaded), without repeats."""
        banks = self.bank or ((),) * len(self.names)
        return [list(dict.fromkeys([*templates, *bank]))
                for templates, bank in zip(self.template_captions(), banks)]

    def lookup(self) -> dict[str, int]:
        """Every training caption (normalised), and each class's display name, to its label:
        what a class-conditional encoder understands."""
        table = {normalize_prompt(c): k for k, caps in enumerate(self.training_captions()) for c in caps}
        table.update({normalize_prompt(n): k for k, n in enumerate(self.names)})
        return table

    def all_captions(self) -> list[str]:
        """The finite caption set of the dataset (display names, training captions, held-out
        paraphrases): what a pretrained encoder encodes once and caches."""
        caps = [*self.names, *(c for cs in self.training_captions() for c in cs),
                *(c for cs in (*self.heldout, *self.paraphrases, *self.rare) for c in cs)]
        return list(dict.fromkeys(caps))


_FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

FASHION_MNIST = Classes(
    names=_FASHION_NAMES,
    synonyms=(
        ("t-shirt", "tshirt", "t shirt", "tee", "top", "tee shirt"),
        ("trousers", "pants", "jeans", "pair of trousers", "pair of pants"),
        ("sweater", "jumper"),
        ("gown", "frock"),
        ("jacket", "overcoat"),
        ("sandals", "pair of sandals"),
        ("blouse", "button-up shirt", "button-down shirt"),
        ("sneakers", "trainer", "trainers", "running shoe", "running shoes", "pair of sneakers"),
        ("handbag", "purse", "tote bag"),
        ("boot", "boots", "ankle boots", "pair of ankle boots"),
    ),
    # Written for t2i; none of these phrases is a training caption.
    heldout=(
        ("a casual short-sleeved tee", "a plain crew-neck top", "something light to wear on a hot day"),
        ("a pair of slacks", "long denim legwear", "something you wear on your legs"),
        ("a warm knitted top with long sleeves", "a cosy wool knit", "a thick woollen sweater for winter"),
        ("an elegant evening dress", "a one-piece garment with a skirt", "a long summer frock"),
        ("a warm winter coat with buttons", "a long jacket for cold weather", "heavy outerwear"),
        ("open-toed summer footwear", "strappy shoes for the beach", "flip flops"),
        ("a formal shirt with a collar", "a long-sleeved button shirt", "a plaid flannel shirt"),
        ("athletic shoes for jogging", "a canvas shoe with laces", "sports footwear"),
        ("a leather shoulder bag", "something to carry your things in", "a bag with handles"),
        ("a short leather boot", "heeled boots for winter", "footwear that covers the ankle"),
    ),
    paraphrases=asset_prompts("fashion-mnist-paraphrases.json", _FASHION_NAMES),
    rare=asset_prompts("fashion-mnist-rare-words.json", _FASHION_NAMES),
    bank_file="fashion-mnist-captions.json",
)

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

MNIST = Classes(
    names=tuple(str(d) for d in range(10)),
    synonyms=tuple((w,) for w in _DIGIT_WORDS),
    heldout=tuple((f"the numeral {d}", f"a {w} written by hand", f"handwritten number {w}")
                  for d, w in enumerate(_DIGIT_WORDS)),
    templates=("{name}", "the digit {name}", "the number {name}", "a handwritten {name}"),
)

CIFAR10 = Classes(
    names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    synonyms=(("aeroplane", "plane", "jet"), ("car", "sedan"), ("sparrow", "songbird"),
              ("kitten", "tabby cat"), ("stag", "fawn"), ("puppy", "hound"), ("toad",),
              ("pony", "stallion"), ("boat", "cargo ship"), ("lorry", "pickup truck")),
    heldout=(("a passenger aircraft in the sky",), ("a red sports car on the road",),
             ("a small bird on a branch",), ("a cat sitting on a sofa",),
             ("a deer in the forest",), ("a dog running on grass",), ("a green frog on a leaf",),
             ("a brown horse in a field",), ("a ship at sea",), ("a delivery truck on a highway",)),
)
