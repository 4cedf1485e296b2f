import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFont

from t2i.data import DataError, load_dataset
from t2i.data.emoji import (
    FONT_SIZE,
    HELDOUT,
    HUE_COLOURS,
    captions,
    colour_families,
    dominant_hue,
    find_font,
    load_emoji,
    recolour,
    recolourings,
    render,
    table,
)
from t2i.sections import DataConfig
from t2i.utils.images import to_hsv

ROOT = Path(__file__).resolve().parents[2]


def test_one_glyph_renders_in_colour_on_a_square(emoji_font):
    image = render("\U0001F34E", ImageFont.truetype(str(emoji_font), FONT_SIZE))  # red apple
    assert image.mode == "RGBA" and image.width == image.height > 100
    pixels = torch.from_numpy(np.asarray(image)).reshape(-1, 4).float()
    opaque = pixels[pixels[:, 3] > 200]
    assert len(opaque) > 0.3 * len(pixels)
    assert (opaque[:, 0] - opaque[:, 2]).mean() > 80  # red, not grey


def test_the_dataset_is_rgb_at_the_asked_size_labelled_by_group(tmp_path, emoji_font):
    cfg = DataConfig(dataset="emoji", image_size=16, cache_dir=str(tmp_path))
    data = load_dataset(cfg)
    assert data.images.shape == (len(table()) - len(HELDOUT), 3, 16, 16)
    assert data.images.dtype == torch.uint8 and data.images.float().std() > 30
    names = [c[0] for c in data.captions]
    apple = names.index("red apple")
    assert data.labels[apple] == data.labels[names.index("green apple")] != data.labels[names.index("grinning face")]
    assert (data.images[apple, 0].float().mean() > data.images[apple, 2].float().mean() + 40)
    everything = load_emoji(cfg, heldout=True, progress=False)
    assert len(everything) == len(table()) and "green heart" in [c[0] for c in everything.captions]


def test_captions_of_a_known_emoji():
    row = next(r for r in table() if r["name"] == "red apple")
    caps = captions(row)
    assert caps[0] == "red apple"
    assert {"a red apple", "an emoji of a red apple", "red apple icon", "apple emoji"} <= set(caps)
    person = next(r for r in table() if r["name"] == "man: red hair")
    assert captions(person)[0] == "man, red hair"


def test_held_out_pairs_never_appear_in_training_captions():
    training = [c for r in table() if r["name"] not in HELDOUT for c in captions(r)]
    for pair in HELDOUT:
        assert not [c for c in training if re.search(rf"\b{pair}\b", c)], pair
        colour, thing = pair.split()
        # ... while the colour and the object are both seen with other partners
        family = next(m for k, m in colour_families().items() if k == thing)
        assert any(m != pair for m in family)
        assert any(colour in c and thing not in c for c in training)


def test_recolouring_adds_only_the_hues_an_object_lacks_and_no_held_out_pair():
    rows = [r for r in table() if r["name"] not in HELDOUT]
    made = {new["name"]: (rows[i]["name"], colour) for i, colour, new in recolourings(rows)}
    real = {r["name"] for r in table()}
    assert made["large purple diamond"][1] == "purple" and "red book" in made
    assert not set(made) & real  # "blue book" is Noto's own, not a copy
    assert not [n for n in made if any(re.search(rf"\b{pair}\b", n) for pair in HELDOUT)]
    assert "orange book" not in made and "red square" not in made
    assert not [n for n in made if "brown" in n or "pink" in n]  # not a hue rotation away
    assert "man, purple hair" not in made and "leafy red" not in made  # a colour that is not an object's
    new = next(r for _, _, r in recolourings(rows) if r["name"] == "large purple diamond")
    assert "an emoji of a large purple diamond" in captions(new)
    assert not [c for c in captions(new) if "blue" in c or "orange" in c]


def test_recoloured_copies_take_their_colour_and_the_holdout_stays_real(tmp_path, emoji_font):
    base = DataConfig(dataset="emoji", image_size=16, cache_dir=str(tmp_path), holdout=5)
    plain = load_emoji(base, progress=False)
    data = load_emoji(dataclasses.replace(base, recolour=True), progress=False)
    names = [c[0] for c in data.captions]
    rows = [r for r in table() if r["name"] not in HELDOUT]
    assert len(data) == len(plain) + len(recolourings(rows[:-5]))
    assert data.captions[-5:] == plain.captions[-5:]  # validation images: real, and not copied
    with pytest.raises(DataError, match="leaves nothing to train on"):  # not 3 copies of the first 199
        load_dataset(dataclasses.replace(base, subset=200, holdout=201, recolour=True))
    hue = dominant_hue(*to_hsv(data.images.float() / 127.5 - 1))
    purple = torch.tensor([n == "purple heart" or n == "purple circle" for n in names])
    made = names.index("purple book")
    assert abs(hue[made] - hue[purple].mean()) < 15 and abs(hue[made] - hue[names.index("green book")]) > 60
    assert data.labels[made] == data.labels[names.index("green book")]
    assert set(HUE_COLOURS) >= {w for n in names[len(plain) - 5:-5] for w in n.split() if w in HUE_COLOURS}
    # A few rows (a small data.subset) make only the colours they hold an emoji of.
    pick = [names.index("red apple"), names.index("blue book")]
    images, copies = recolour(plain.images[pick], [next(r for r in table() if r["name"] == names[i]) for i in pick])
    assert sorted(r["name"] for r in copies) == ["blue apple", "red book"] and images.shape == (2, 3, 16, 16)


def test_a_missing_font_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="fonts-noto-color-emoji"):
        find_font(str(tmp_path / "none.ttf"))
    with pytest.raises(DataError, match="data.font"):
        load_dataset(DataConfig(dataset="emoji", font=str(tmp_path / "none.ttf"), cache_dir=str(tmp_path)))


def test_the_shipped_table_is_what_the_script_makes(missing):
    try:
        import emoji  # noqa: F401
    except ImportError:
        missing("the emoji package (pip install emoji)")
    sys.path.insert(0, str(ROOT / "scripts"))
    import emoji_table
    if not emoji_table.EMOJI_TEST.is_file():
        missing("Unicode's emoji-test.txt (Debian unicode-data)")
    assert emoji_table.build() == json.loads(emoji_table.TABLE.read_text(encoding="utf-8"))
