"""The shapes judge on known answers: renders of every task pass it, also blurred and noisy;
swapped colours, swapped relations and wrong counts fail it (evaluation/shapes.py)."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from t2i.data.shapes import HELDOUT, Scene, parse, render_meaning, scene
from t2i.evaluation.shapes import (
    TASKS,
    ShapesReference,
    composition_table,
    detect,
    geneval_prompts,
    passes,
    phrasing_prompts,
)


def as_input(image: np.ndarray, blur: float = 0.0, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    x = image.astype(np.float32)
    if blur:
        x = ndimage.gaussian_filter(x, sigma=(0, blur, blur))
    x = torch.from_numpy(x) / 127.5 - 1
    g = torch.Generator().manual_seed(seed)
    return (x + noise * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def two(objects) -> np.ndarray:
    """A hand-placed scene: objects as (shape, colour, size, x0, y0, side)."""
    drawn = Scene(32)
    drawn.objects = list(objects)
    return drawn.render(np.random.default_rng(0))


def test_detect_reads_a_hand_made_scene():
    image = two([("circle", "red", "large", 2, 10, 12), ("square", "blue", "small", 22, 12, 7)])
    found = sorted(detect(as_input(image)), key=lambda d: d.x)
    assert [(d.shape, d.colour, d.size) for d in found] == [("circle", "red", "large"),
                                                             ("square", "blue", "small")]
    assert found[0].x == pytest.approx(8) and found[1].y == pytest.approx(15.5)


@pytest.mark.parametrize("blur,noise", [(0.0, 0.0), (0.5, 0.05), (0.0, 0.1)])
def test_training_scenes_pass_their_own_captions(blur, noise):
    ok = total = 0
    for i in range(300):
        image, captions, drawn = scene(i)
        found = detect(as_input(image, blur, noise, seed=i))
        if not blur and not noise:
            assert len(found) == len(drawn.objects)
        for caption in captions:
            ok += passes(parse(caption), found)
            total += 1
    assert ok / total >= 0.99


def test_renders_of_every_prompt_pass_and_the_floor_is_reported_per_task():
    reference = ShapesReference(n=3)
    assert set(reference.floor) == {*TASKS, "held_out", "overall"}
    assert all(v >= 0.99 for v in reference.floor.values())
    rng = np.random.default_rng(1)
    for rows in phrasing_prompts().values():
        for prompt, means in rows:
            meaning = parse(means)
            assert meaning is not None, means
            assert passes(meaning, detect(as_input(render_meaning(meaning, rng), 0.5, 0.05)))


def test_swapped_colours_relations_and_wrong_counts_fail():
    image = two([("circle", "red", "large", 2, 10, 12), ("square", "blue", "small", 22, 12, 7)])
    found = detect(as_input(image))
    assert passes(parse("a red circle and a blue square"), found)
    assert not passes(parse("a blue circle and a red square"), found)  # colours swapped
    assert passes(parse("a red circle to the left of a blue square"), found)
    assert not passes(parse("a red circle to the right of a blue square"), found)  # relation swapped
    assert not passes(parse("a blue square to the left of a red circle"), found)  # objects swapped
    assert not passes(parse("a circle above a square"), found)  # the horizontal offset dominates
    assert passes(parse("a circle"), found) and not passes(parse("a triangle"), found)
    assert passes(parse("a large red circle"), found) and not passes(parse("a small red circle"), found)
    three = two([("cross", "green", "small", 2, 2, 7), ("cross", "green", "small", 20, 2, 7),
                 ("cross", "orange", "small", 10, 20, 7)])
    found = detect(as_input(three))
    assert passes(parse("three crosses"), found)
    assert not passes(parse("two crosses"), found) and not passes(parse("four crosses"), found)
    assert not passes(parse("three green crosses"), found)  # one is orange


def test_the_development_prompts_cover_each_task_and_hold_out_pairs():
    prompts = geneval_prompts()
    assert set(prompts) == {*TASKS, "held_out"}
    assert all(parse(p) is not None for rows in prompts.values() for p in rows)
    held = {f"{c} {s}" for c, s in HELDOUT}
    for task, rows in prompts.items():
        named = [p for p in rows if any(h in p for h in held)]
        assert (len(named) == len(rows)) if task == "held_out" else not named
    assert len(prompts["position"]) >= 20 and len(prompts["color_attr"]) >= 20
    assert set(phrasing_prompts()) == set(prompts)


def test_composition_table_has_a_row_per_report():
    report = {"protocol": {"prompts": "geneval"}, "run": {"preset": "shapes", "train_minutes": 30.0,
                                                          "steps": 9000, "train_img_per_s": 160.0},
              **{k: 0.5 for k in (*TASKS, "held_out", "overall")}}
    table = composition_table([("a.json", report)])
    assert table.count("\n") == 3 and "| `shapes` | geneval | 30.0 | 9000 | 160 |" in table
