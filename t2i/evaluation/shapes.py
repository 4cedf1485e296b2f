"""Judging models trained on shapes (data.dataset=shapes) the way GenEval judges real models.

The detector is exact for this world: objects are the connected groups of coloured pixels
(saturation > 0.35 on the white canvas, 8-connected, specks under a few pixels dropped); an
object's colour is the named hue nearest its pixels' mean hue; its shape the template (circle,
square, triangle, diamond, cross, drawn in the object's box) it overlaps best (IoU); its size
small or large by its box. No learned part, so the judge cannot be fooled by what a network
learnt, and renders pass it (tests/evaluation/test_shapes.py).

Tasks, as GenEval rules them (Ghosh et al. 2023), on prompts of the shapes grammar:
- single_object "a {shape}": at least one object of that shape;
- two_object "a {s1} and a {s2}": both shapes present;
- counting "{n} {shape}s": exactly n objects of that shape;
- colors "a {colour} {shape}": an object of that shape in that colour;
- position "a {s1} {relation} a {s2}": two such objects whose centres stand so, the named axis
  dominant;
- color_attr "a {c1} {s1} and a {c2} {s2}": two different objects, each with its own colour;
overall is the mean of the six. held_out: prompts naming a colour-shape pair no training image
shows (data/shapes.py HELDOUT), alone or beside another object.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..data.shapes import (BASE, COLOURS, HELDOUT, PLURALS, RELATIONS, SHAPES, Meaning, article, offsets,
                           parse, render_meaning, shape_mask)
from ..utils.images import circular_mean, to_hsv
from .classifier import ASSETS

TASKS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
HEADLINE = ("overall", *TASKS, "held_out")
PHRASINGS = ASSETS / "shapes-phrasings.json"
MIN_SATURATION = 0.35
MIN_AREA = 6  # pixels at 32x32: smaller coloured specks are noise, not objects
SMALL_MAX = 10  # px at 32x32: a box side up to this is small (small 6-8, large 11-14; blur widens)


@dataclass(frozen=True)
class Detection:
    shape: str
    colour: str
    size: str
    x: float  # the centre of its box
    y: float
    area: int


def _colour(hues: np.ndarray) -> str:
    """The named colour nearest the circular mean of `hues` (degrees)."""
    mean = circular_mean(torch.from_numpy(hues), torch.ones(len(hues)), 0).item()
    return min(COLOURS, key=lambda c: min(abs(mean - COLOURS[c]), 360 - abs(mean - COLOURS[c])))


def _shape(mask: np.ndarray) -> str:
    """The shape whose template, drawn in the object's box, overlaps `mask` best."""
    h, w = mask.shape
    def iou(shape):
        t = shape_mask(shape, w, h)
        return (t & mask).sum() / max((t | mask).sum(), 1)
    return max(SHAPES, key=iou)


def detect(image: torch.Tensor) -> list[Detection]:
    """The objects of one RGB image in [-1, 1] (3, H, W)."""
    hue, saturation, value = (m[0].numpy() for m in to_hsv(image[None].float()))
    side = image.shape[-1]
    scale2 = (side / BASE) ** 2
    labels, n = ndimage.label((saturation > MIN_SATURATION) & (value > 0.2), structure=np.ones((3, 3)))
    found = []
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        mask = labels[box] == i
        area = int(mask.sum())
        if area < MIN_AREA * scale2:
            continue
        vivid = mask & (saturation[box] > 0.5)
        hues = hue[box][vivid if vivid.any() else mask]
        big = max(mask.shape) > SMALL_MAX * side / BASE
        # The centre of the object's box, as the dataset places objects (and GenEval its boxes).
        found.append(Detection(_shape(mask), _colour(hues), "large" if big else "small",
                               (box[1].start + box[1].stop) / 2, (box[0].start + box[0].stop) / 2, area))
    return found


def _matches(d: Detection, thing) -> bool:
    return (d.shape == thing.shape and (thing.colour is None or d.colour == thing.colour)
            and (thing.size is None or d.size == thing.size))


def _stands(a: Detection, b: Detection, relation: str) -> bool:
    """Whether "a <relation> b" holds of their centres, the named axis dominant."""
    along, across = offsets((a.x, a.y), (b.x, b.y), relation)
    return along > 0 and along > across


def passes(meaning: Meaning, found: list[Detection]) -> bool:
    """Whether the detected objects show what `meaning` asks for, as GenEval rules it."""
    if meaning.count is not None:
        thing = meaning.things[0]
        of_shape = [d for d in found if d.shape == thing.shape]
        return len(of_shape) == meaning.count and all(_matches(d, thing) for d in of_shape)
    if len(meaning.things) == 1:
        return any(_matches(d, meaning.things[0]) for d in found)
    a, b = meaning.things
    return any(x is not y and _matches(x, a) and _matches(y, b)
               and (meaning.relation is None or _stands(x, y, meaning.relation))
               for x, y in itertools.product(found, found))


def geneval_prompts() -> dict[str, list[str]]:
    """The development prompts, GenEval's task mix on shapes (fixed: no randomness)."""
    allowed = [(c, s) for s in SHAPES for c in COLOURS if (c, s) not in HELDOUT]
    pairs = list(itertools.combinations(SHAPES, 2))
    relations = list(RELATIONS)
    attr = [(allowed[i % len(allowed)], allowed[(7 * i + 3) % len(allowed)]) for i in range(40)]
    attr = [(a, b) for a, b in attr if a[0] != b[0] and a[1] != b[1]][:20]
    return {
        "single_object": [f"{article(s)} {s}" for s in SHAPES],
        "two_object": [f"{article(a)} {a} and {article(b)} {b}" for a, b in pairs],
        "counting": [f"{n} {PLURALS[s]}" for s in SHAPES for n in ("two", "three", "four")],
        "colors": [f"{article(c)} {c} {s}" for c, s in allowed],
        "position": [f"{article(a)} {a} {relations[(i + k) % 4]} {article(b)} {b}"
                     for i, (a, b) in enumerate(pairs) for k in (0, 2)],
        "color_attr": [f"{article(c1)} {c1} {s1} and {article(c2)} {c2} {s2}" for (c1, s1), (c2, s2) in attr],
        "held_out": [f"{article(c)} {c} {s}" for c, s in HELDOUT]
        + [f"{article(c)} {c} {s} and {article(o)} {o} {t}"
           for (c, s), (o, t) in zip(HELDOUT, [("blue", "cross"), ("red", "circle"), ("orange", "triangle"),
                                                ("purple", "square"), ("green", "diamond")])],
    }


def phrasing_prompts() -> dict[str, list[tuple[str, str]]]:
    """The phrasing set: (prompt as a user might write it, the caption it means) by task,
    written apart from the training captions and never tuned on."""
    return {task: [tuple(pair) for pair in rows] for task, rows in json.loads(PHRASINGS.read_text()).items()}


class ShapesReference:
    """The fixed side of a shapes evaluation: the prompt set and its real floor (the judge on
    `n` renders of each prompt's meaning, seeded)."""

    def __init__(self, n: int, prompts: str = "geneval", side: int = BASE):
        if prompts == "geneval":
            self.sets = {task: [(p, p) for p in ps] for task, ps in geneval_prompts().items()}
        elif prompts == "phrasings":
            self.sets = phrasing_prompts()
        else:
            raise ValueError(f"shapes prompt sets are 'geneval' and 'phrasings', not {prompts!r}")
        self.name, self.n = prompts, n
        rng = np.random.default_rng(0)
        real = {}
        for task, rows in self.sets.items():
            for _, means in rows:
                meaning = parse(means)
                images = [torch.from_numpy(render_meaning(meaning, rng, side)).float() / 127.5 - 1
                          for _ in range(n)]
                real[means] = sum(passes(meaning, detect(x)) for x in images) / n
        self.floor = summarise(self.sets, lambda prompt, means: real[means])


def summarise(sets: dict, score) -> dict:
    """Per-task accuracy (mean over its prompts of `score(prompt, means)`), overall (the six
    tasks' mean) and held_out."""
    out = {task: float(np.mean([score(p, m) for p, m in rows])) for task, rows in sets.items()}
    out["overall"] = float(np.mean([out[t] for t in TASKS if t in out]))
    return out


def evaluate_shapes(pipe, reference: ShapesReference, n_per_prompt: int = 10, seed: int = 0,
                    **sampling) -> dict:
    """The report of a shapes pipeline: every prompt drawn `n_per_prompt` times (seeds
    seed..seed+n-1), each image judged."""
    sampling = pipe.sampling(**sampling)
    start, per_prompt = time.perf_counter(), {}
    for task, rows in reference.sets.items():
        for prompt, means in rows:
            images = pipe([prompt], seed=seed, num_per_prompt=n_per_prompt, **sampling) * 2 - 1
            meaning = parse(means)
            per_prompt[prompt] = sum(passes(meaning, detect(x)) for x in images) / n_per_prompt
    count = n_per_prompt * len(per_prompt)
    scores = summarise(reference.sets, lambda prompt, means: per_prompt[prompt])
    return {
        "protocol": {"dataset": "shapes", "images": count, "n_per_class": n_per_prompt, **sampling,
                     "seed": seed, "prompts": reference.name,
                     "prompt_sets": {t: [p for p, _ in rows] for t, rows in reference.sets.items()},
                     "judge": "connected components, nearest named hue, best template IoU (exact)",
                     "real_floor": f"the judge on {reference.n} renders of each prompt's meaning"},
        **scores, "headline": list(HEADLINE), "per_prompt": per_prompt,
        "real_floor": reference.floor, "sample_img_per_s": count / (time.perf_counter() - start),
    }


def format_shapes_report(report: dict) -> str:
    """The terminal summary: each task beside its real floor, then the prompts that missed most."""
    p, floor = report["protocol"], report["real_floor"]
    lines = [f"{p['images']} images, {p['n_per_class']} per prompt ({p['sampler']} {p['steps']}, "
             f"CFG {p['cfg']:g}, {report['sample_img_per_s']:.1f} img/s), prompts: {p['prompts']}",
             f"{'':>14} {'generated':>10} {'real floor':>10}"]
    for key in HEADLINE:
        lines.append(f"{key:>14} {report[key]:10.3f} {floor[key]:10.3f}")
    worst = sorted(report["per_prompt"].items(), key=lambda kv: (kv[1], kv[0]))[:10]
    lines.append("prompts that missed most:")
    lines += [f"{acc:6.2f}  {prompt!r}" for prompt, acc in worst]
    return "\n".join(lines)


def composition_table(reports: list[tuple[str, dict]]) -> str:
    """A Markdown table of shapes reports, one row each: every GenEval task and held_out."""
    head = "| preset | prompts | CPU min | steps | train img/s | " + " | ".join(HEADLINE) + " | report |\n"
    head += "|---" * (len(HEADLINE) + 6) + "|\n"
    rows = []
    for name, r in reports:
        run = r.get("run", {})
        rows.append(f"| `{run.get('preset', '?')}` | {r['protocol']['prompts']} | "
                    f"{run.get('train_minutes', 0):.1f} | {run.get('steps', 0)} | "
                    f"{run.get('train_img_per_s', 0):.0f} | "
                    + " | ".join(f"{r[k]:.2f}" for k in HEADLINE) + f" | {name} |")
    return head + "\n".join(rows) + "\n"
