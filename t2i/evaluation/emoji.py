"""Evaluating models trained on emoji (data.dataset=emoji), without a Fashion-MNIST classifier.

The judge is a small CNN trained on the emoji's group and subgroup labels by
`t2i eval train-classifier --dataset emoji` (deterministic, 4 in 5 emoji with random shifts and
flips; the fifth is its test set), shipped in t2i/assets with its test accuracy. Its penultimate
layer is the feature space of FD, precision/recall and retrieval.

Protocol: N images (seeds 0..N-1) for each prompt of two sets, "a/an <name>":
- seen: every colour-object emoji that training saw (a red heart, a blue book: the
  `colour_families` of emoji.py with a judged colour) and 60 other training emoji drawn once
  with a fixed seed;
- held out: the colour-object pairs never trained on (emoji.HELDOUT: a green heart).
Reported: group accuracy (the judge's group is the emoji's), FD / precision / recall against
all 1,609 real emoji, retrieval (the nearest training emoji in feature space is the prompt's own),
colour accuracy on prompts with a colour word (colour.py), for each set and each prompt; and the
real-data floor: the same numbers for the prompts' real emoji, each shifted at random N times.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ..data.emoji import (
    HELDOUT,
    colour_families,
    colour_words,
    display_name,
    load_emoji,
    rows_of,
    table,
)
from ..sections import DataConfig
from .classifier import ASSETS
from .colour import JUDGED, dominant_colours
from .metrics import frechet_distance, precision_recall

CLASSIFIER = "emoji_classifier"
SIZE = 32  # the judge's image side; other sizes are resized to it
OTHER_PROMPTS = 60


class EmojiClassifier(nn.Module):
    """A small CNN for 32x32 RGB images in [-1, 1] with a group and a subgroup head."""

    def __init__(self, groups: int, subgroups: int):
        super().__init__()
        block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]  # noqa: E731
        self.conv = nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),  # 16x16
                                  *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # 8x8
                                  *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(128, 128), nn.ReLU())
        self.group, self.subgroup = nn.Linear(128, groups), nn.Linear(128, subgroups)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != SIZE:
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.group(f), self.subgroup(f)


def labels() -> tuple[list[str], list[str]]:
    """The group and subgroup names, in table order."""
    rows = table()
    return (list(dict.fromkeys(r["group"] for r in rows)), list(dict.fromkeys(r["subgroup"] for r in rows)))


def real_emoji(font: Optional[str] = None, progress: bool = False):
    """Every emoji (held-out ones too) at the judge's size: images in [-1, 1], the table rows."""
    data = load_emoji(DataConfig(dataset="emoji", image_size=SIZE, font=font), heldout=True,
                      progress=progress)
    return data.batch(torch.arange(len(data)))[0], rows_of(data.captions)


def shift(x: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """Each image moved by a random offset of up to `pixels` (what the emoji sit on is white)."""
    dx, dy = torch.randint(-pixels, pixels + 1, (2,)).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train_emoji_classifier(out_dir: str | Path, font: Optional[str] = None, epochs: int = 60,
                           seed: int = 0, progress: bool = True) -> float:
    """Train the judge deterministically on 4 in 5 emoji; write weights and test accuracy."""
    torch.manual_seed(seed)
    images, rows = real_emoji(font, progress)
    group_names, subgroup_names = labels()
    g = torch.tensor([group_names.index(r["group"]) for r in rows])
    s = torch.tensor([subgroup_names.index(r["subgroup"]) for r in rows])
    test = torch.arange(len(rows)) % 5 == 0
    train_idx = (~test).nonzero().squeeze(1)
    model = EmojiClassifier(len(group_names), len(subgroup_names))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    batches = len(train_idx) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * batches)
    for _ in tqdm(range(epochs), desc="emoji classifier", disable=not progress):
        model.train()
        perm = train_idx[torch.randperm(len(train_idx))]
        for i in range(batches):
            idx = perm[i * 64:(i + 1) * 64]
            x = shift(images[idx])
            if torch.rand(()) < 0.5:
                x = x.flip(3)
            out_g, out_s = model(x)
            loss = F.cross_entropy(out_g, g[idx]) + F.cross_entropy(out_s, s[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        out_g, out_s = model(images[test])
    meta = {"test_accuracy": (out_g.argmax(1) == g[test]).double().mean().item(),
            "test_subgroup_accuracy": (out_s.argmax(1) == s[test]).double().mean().item(),
            "test_images": int(test.sum()), "epochs": epochs, "seed": seed,
            "groups": group_names, "subgroups": subgroup_names}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{CLASSIFIER}.safetensors")
    (out / f"{CLASSIFIER}.json").write_text(json.dumps(meta, indent=2))
    return meta["test_accuracy"]


def load_emoji_classifier(path: Optional[str | Path] = None) -> tuple[EmojiClassifier, dict]:
    root = Path(path) if path else ASSETS
    meta = json.loads((root / f"{CLASSIFIER}.json").read_text())
    model = EmojiClassifier(len(meta["groups"]), len(meta["subgroups"]))
    model.load_state_dict(load_file(root / f"{CLASSIFIER}.safetensors"))
    return model.eval(), meta


def prompt_sets() -> dict[str, list[str]]:
    """The emoji names of each prompt set (see the module doc)."""
    families = [m for members in colour_families().values() for m in members
                if colour_words(m)[0] in JUDGED]
    seen = [m for m in families if m not in HELDOUT]
    others = sorted(r["name"] for r in table() if r["name"] not in HELDOUT and r["name"] not in seen)
    return {"seen": seen + sorted(random.Random(0).sample(others, OTHER_PROMPTS)),
            "heldout": [m for m in families if m in HELDOUT]}


def prompt_of(name: str) -> str:
    shown = display_name(name)
    return f"{'an' if shown[:1] in 'aeiou' else 'a'} {shown}"


class EmojiReference:
    """The evaluation's fixed side for emoji: the judge, the features of every real emoji (FD's
    and precision/recall's reference), those of the training emoji (retrieval's), and the
    real-data floor of each prompt set for `n` images per prompt."""

    def __init__(self, n: int, font: Optional[str] = None, k: int = 3, seed: int = 0):
        self.classifier, self.meta = load_emoji_classifier()
        self.k = k
        self.images, self.rows = real_emoji(font)
        self.index = {r["name"]: i for i, r in enumerate(self.rows)}
        self.features = self._features(self.images)
        self.trained = torch.tensor([r["name"] not in HELDOUT for r in self.rows])
        self.reference = f"all {len(self.rows)} emoji at {SIZE}x{SIZE}"
        self.sets = prompt_sets()
        gen = torch.Generator().manual_seed(seed)
        self.floor = {}
        for which, names in self.sets.items():
            real = self.images[[self.index[m] for m in names for _ in range(n)]]
            dx, dy = torch.randint(-2, 3, (2, len(real)), generator=gen)
            real = torch.stack([torch.roll(x, (int(b), int(a)), (1, 2)) for x, a, b in zip(real, dx, dy)])
            self.floor[which] = self.score(real, names, n)

    @torch.no_grad()
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.classifier.features(images[i:i + 500]).double()
                          for i in range(0, len(images), 500)])

    def score(self, images: torch.Tensor, names: list[str], n: int) -> dict:
        """The metrics of images in [-1, 1], `n` per emoji name of `names`, in order."""
        feats = self._features(images)
        groups = self.meta["groups"]
        with torch.no_grad():
            predicted = self.classifier.group(feats.float()).argmax(1)
        target = torch.tensor([groups.index(self.rows[self.index[m]]["group"]) for m in names]).repeat_interleave(n)
        trained = self.trained.nonzero().squeeze(1)
        nearest = trained[torch.cdist(feats, self.features[trained]).argmin(1)]
        own = torch.tensor([self.index[m] for m in names]).repeat_interleave(n)
        judged = [next((c for c in colour_words(m)[:1] if c in JUDGED), None) for m in names]
        wanted = [w for w in judged for _ in range(n)]  # the colour of each image, None: unjudged
        colours = dominant_colours(images)
        colour_ok = [c == w for c, w in zip(colours, wanted) if w is not None]
        precision, recall = precision_recall(self.features, feats, self.k)
        per_prompt = {}
        for i, m in enumerate(names):
            rows = slice(i * n, (i + 1) * n)
            per_prompt[prompt_of(m)] = {
                "group": (predicted[rows] == target[rows]).double().mean().item(),
                "retrieval": (nearest[rows] == own[rows]).double().mean().item(),
                "colour": (sum(c == judged[i] for c in colours[rows]) / n) if judged[i] else None,
                "colours_drawn": sorted(set(colours[rows]))}
        return {"group_accuracy": (predicted == target).double().mean().item(),
                "retrieval": (nearest == own).double().mean().item(),
                "colour_accuracy": sum(colour_ok) / len(colour_ok) if colour_ok else None,
                "fd": frechet_distance(feats, self.features), "precision": precision,
                "recall": recall, "per_prompt": per_prompt}


HEADLINE = ("group_accuracy", "colour_accuracy", "heldout_colour_accuracy", "retrieval", "fd",
            "precision", "recall")


def evaluate_emoji(pipe, reference: EmojiReference, n_per_prompt: int = 10, seed: int = 0,
                   **sampling) -> dict:
    """The evaluation report of an emoji pipeline (see the module doc)."""
    sampling = pipe.sampling(**sampling)
    start, scores = time.perf_counter(), {}
    for which, names in reference.sets.items():
        images = torch.cat([pipe([prompt_of(m)], seed=seed, num_per_prompt=n_per_prompt, **sampling) * 2 - 1
                            for m in names])
        scores[which] = reference.score(images, names, n_per_prompt)
    count = n_per_prompt * sum(len(v) for v in reference.sets.values())
    seconds = time.perf_counter() - start
    flat = lambda s: {**{k: v for k, v in s["seen"].items() if k != "per_prompt"},  # noqa: E731
                      "heldout_colour_accuracy": s["heldout"]["colour_accuracy"],
                      "heldout_group_accuracy": s["heldout"]["group_accuracy"]}
    return {
        "protocol": {"dataset": "emoji", "images": count, "n_per_class": n_per_prompt, **sampling,
                     "seed": seed, "prompts": "emoji",
                     "prompt_sets": {k: [prompt_of(m) for m in v] for k, v in reference.sets.items()},
                     "reference": reference.reference,
                     "features": "t2i emoji classifier, penultimate layer (128-d)",
                     "precision_recall_k": reference.k,
                     "real_floor": f"the prompts' own emoji, each shifted at random {n_per_prompt} times"},
        **flat(scores), "headline": list(HEADLINE),
        "per_prompt": {**scores["seen"]["per_prompt"], **scores["heldout"]["per_prompt"]},
        "real_floor": flat(reference.floor),
        "sample_img_per_s": count / seconds,
        "classifier_test_accuracy": reference.meta["test_accuracy"],
    }


def format_emoji_report(report: dict) -> str:
    """The terminal summary of an emoji report: each metric beside its floor, the held-out
    prompts, and the ten seen prompts whose group or colour missed most."""
    p, floor = report["protocol"], report["real_floor"]
    lines = [f"{p['images']} images, {p['n_per_class']} per prompt ({p['sampler']} {p['steps']}, "
             f"CFG {p['cfg']:g}, {report['sample_img_per_s']:.1f} img/s) against {p['reference']}",
             f"{'':>24} {'generated':>10} {'real floor':>10}"]
    for key in HEADLINE:
        value, real = report[key], floor[key]
        lines.append(f"{key:>24} {value if value is not None else float('nan'):10.4f} "
                     f"{real if real is not None else float('nan'):10.4f}")
    per = report["per_prompt"]
    lines.append("held-out compositions (colour accuracy, colours drawn):")
    for prompt in p["prompt_sets"]["heldout"]:
        lines.append(f"{per[prompt]['colour']:6.2f}  {prompt!r} {per[prompt]['colours_drawn']}")
    worst = sorted(p["prompt_sets"]["seen"], key=lambda q: (per[q]["colour"] if per[q]["colour"] is not None
                                                            else per[q]["group"], q))[:10]
    lines.append("worst seen prompts (group, retrieval, colour):")
    for prompt in worst:
        c = per[prompt]["colour"]
        lines.append(f"{per[prompt]['group']:6.2f} {per[prompt]['retrieval']:6.2f} "
                     f"{'   -  ' if c is None else f'{c:6.2f}'}  {prompt!r}")
    return "\n".join(lines)
