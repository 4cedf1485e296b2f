import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFont

from t2i.config import DataConfig
from t2i.data import DataError, load_dataset
from t2i.data.emoji import (FONT_SIZE, HELDOUT, captions, colour_families, find_font, load_emoji,
                            render, table)

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
