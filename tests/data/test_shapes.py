"""The shapes dataset keeps its spec: every scene, every caption (data/shapes.py)."""

import itertools
import re

import numpy as np
import pytest
import torch

from t2i.data import load_dataset
from t2i.data.shapes import (
    COLOURS,
    HELDOUT,
    NUMBERS,
    PLURALS,
    RELATIONS,
    SHAPES,
    SIZES,
    parse,
    scene,
    scene_mix,
    shape_mask,
)
from t2i.sections import DataConfig
from t2i.utils.images import to_hsv

N = 400  # scenes checked per test


def hue_distance(a, b):
    d = abs(a - b) % 360
    return min(d, 360 - d)


def test_a_scene_is_the_same_for_its_index_and_seed_and_differs_otherwise():
    a, captions_a, _ = scene(7, seed=3)
    b, captions_b, _ = scene(7, seed=3)
    assert np.array_equal(a, b) and captions_a == captions_b
    assert not np.array_equal(a, scene(8, seed=3)[0]) and not np.array_equal(a, scene(7, seed=4)[0])
    data = load_dataset(DataConfig(dataset="shapes", image_size=32, scenes=50), progress=False)
    again = load_dataset(DataConfig(dataset="shapes", image_size=32, scenes=50), progress=False)
    assert data.images.shape == (50, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images, again.images) and data.captions == again.captions
    assert torch.equal(data.images[7], torch.from_numpy(scene(7)[0]))


def test_the_scene_mix_draws_only_the_kinds_it_names_by_their_weights():
    assert scene_mix("") == {"single": 0.2, "pair": 0.3, "count": 0.25, "position": 0.25}
    relation = re.compile("|".join(RELATIONS))
    data = load_dataset(DataConfig(dataset="shapes", image_size=32, scenes=60, scene_mix="position=1"),
                        progress=False)
    assert all(relation.search(c) for captions in data.captions for c in captions)
    mixed = load_dataset(DataConfig(dataset="shapes", image_size=32, scenes=400,
                                    scene_mix="position=3, count=1"), progress=False)
    counted = sum(captions[0].split()[0] in NUMBERS.values() for captions in mixed.captions)
    assert 60 <= counted <= 140 and all(relation.search(captions[0]) or captions[0].split()[0]
                                        in NUMBERS.values() for captions in mixed.captions)
    for bad in ("position", "position=-1", "stripes=1", "position=0,count=0", "position=x"):
        with pytest.raises(ValueError, match="scene_mix"):
            scene_mix(bad)


@pytest.mark.parametrize("side", [32, 64])
def test_objects_keep_the_geometry_of_the_spec(side):
    scale = side / 32
    for i in range(N):
        image, _, drawn = scene(i, side=side)
        assert image.shape == (3, side, side)
        boxes = []
        for shape, colour, size, x0, y0, s in drawn.objects:
            lo, hi = SIZES[size]
            assert round(lo * scale) <= s <= round(hi * scale)
            assert 0 < x0 and x0 + s < side and 0 < y0 and y0 + s < side  # inside, off the edge
            boxes.append((x0, y0, s))
        for (x0, y0, s), (x1, y1, t) in ((p, q) for k, p in enumerate(boxes) for q in boxes[k + 1:]):
            apart = max(x1 - (x0 + s), x0 - (x1 + t), y1 - (y0 + s), y0 - (y1 + t))
            assert apart >= 1, f"scene {i}: boxes closer than 1 px"
        assert 1 <= len(drawn.objects) <= 4


def test_pixels_are_white_or_an_object_colour_of_the_spec():
    for i in range(N):
        image, _, drawn = scene(i)
        hue, sat, val = (m[0] for m in to_hsv(torch.from_numpy(image)[None].float() / 127.5 - 1))
        painted = torch.zeros(32, 32, dtype=torch.bool)
        for shape, colour, _, x0, y0, s in drawn.objects:
            mask = torch.zeros(32, 32, dtype=torch.bool)
            mask[y0:y0 + s, x0:x0 + s] = torch.tensor(shape_mask(shape, s, s))
            assert mask.any()
            h = hue[mask]
            assert torch.all(sat[mask] >= 0.6) and torch.all(val[mask] >= 0.6)
            assert all(hue_distance(float(x), COLOURS[colour]) <= 10 for x in h.unique())
            assert len(torch.unique(torch.from_numpy(image)[:, mask], dim=1).T) == 1  # flat fill
            painted |= mask
        assert torch.all(torch.from_numpy(image)[:, ~painted] == 255)  # white elsewhere


def test_shapes_are_what_they_are_called():
    """Known masks at 6 px: a plus sign's bars a third thick, a triangle pointing up."""
    cross = shape_mask("cross", 6, 6).astype(int)
    assert cross.tolist() == [[0, 0, 1, 1, 0, 0]] * 2 + [[1] * 6] * 2 + [[0, 0, 1, 1, 0, 0]] * 2
    triangle = shape_mask("triangle", 12, 12)
    widths = triangle.sum(1).tolist()
    assert triangle[-1].all() and widths[0] <= 2 and widths == sorted(widths)  # widening downwards
    assert shape_mask("square", 7, 7).all()
    diamond = shape_mask("diamond", 11, 11)
    assert diamond[5].all() and not diamond[0, 0] and diamond.sum() < 0.6 * 121
    circle = shape_mask("circle", 11, 11)
    assert circle[5].all() and not circle[0, 0] and 0.7 * 121 < circle.sum() < 0.85 * 121


def test_captions_say_exactly_what_the_scene_shows():
    numbers = {w: n for n, w in NUMBERS.items()}
    for i in range(N):
        _, captions, drawn = scene(i)
        assert len(captions) >= 2
        objects = drawn.objects
        for caption in captions:
            meaning = parse(caption)
            assert meaning is not None, caption
            named = len(meaning.things) * (meaning.count or 1)
            assert named == len(objects), f"{caption!r} names {named} of {len(objects)} objects"
            if meaning.count:  # exactly that many of that shape, no other shape
                assert {o[0] for o in objects} == {meaning.things[0].shape}
                assert numbers[caption.split()[0]] == len(objects)
            else:  # the things, in the caption's order, are the objects in some order
                def fits(th, obj):
                    return th.shape == obj[0] and th.colour in (None, obj[1]) and th.size in (None, obj[2])
                order = next((perm for perm in itertools.permutations(range(len(objects)))
                              if all(fits(th, objects[k]) for th, k in zip(meaning.things, perm))), None)
                assert order is not None, f"{caption!r} does not match {objects}"
            if meaning.relation:
                a, b = (drawn.centre(k) for k in order)
                axis, sign = RELATIONS[meaning.relation]
                along = (b[axis] - a[axis]) * sign
                assert along >= 6 and along > abs(b[1 - axis] - a[1 - axis]), caption


def test_held_out_pairs_are_in_no_training_image_or_caption():
    pattern = re.compile("|".join(rf"\b{c} ({s}|{PLURALS[s]})\b" for c, s in HELDOUT))
    seen_colours, seen_shapes = set(), set()
    for i in range(2000):
        _, captions, drawn = scene(i)
        for shape, colour, *_ in drawn.objects:
            assert (colour, shape) not in HELDOUT
            seen_colours.add(colour)
            seen_shapes.add(shape)
        assert not any(pattern.search(c) for c in captions)
    assert seen_colours == set(COLOURS) and seen_shapes == set(SHAPES)  # each still trained


def test_every_task_of_the_grammar_occurs():
    found = set()
    for i in range(N):
        for caption in scene(i)[1]:
            m = parse(caption)
            found.add("count" if m.count else "relation" if m.relation else f"{len(m.things)} things")
            found.update(w for w in ("small", "little", "large", "big") if w in caption.split())
    assert found >= {"count", "relation", "1 things", "2 things", "small", "large"}
