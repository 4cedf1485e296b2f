"""The emoji study (docs/studies/emoji.md): pixel against latent space at equal minutes, and the grids.

    # one run per arm and seed (from the repository root), then its report (20 images per prompt)
    t2i train --preset emoji --out study/pixel/seed0 train.seed=0
    t2i eval report --checkpoint study/pixel/seed0 --n-per-class 20 --json study/pixel/seed0/eval.json
    t2i vae train --preset emoji-vae --out runs/emoji-vae          # 5 minutes, once
    t2i train --preset emoji-latent --out study/latent/seed0 train.seed=0
    t2i eval report --checkpoint study/latent/seed0 --n-per-class 20 --json study/latent/seed0/eval.json
    # the table (one row per arm: the mean over its seeds, each seed in brackets)
    python studies/emoji_study.py table --dir study
    # seen and held-out colour-object prompts, one row each, 8 seeds
    python studies/emoji_study.py grid --checkpoint study/pixel/seed0 --set heldout --out grid.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from t2i.evaluation.emoji import HEADLINE, prompt_of, prompt_sets
from t2i.pipeline import Pipeline
from t2i.utils.images import make_grid


def table(args) -> None:
    print("| arm | seeds | DiT CPU min | steps | train img/s | CFG | " + " | ".join(HEADLINE) + " |")
    print("|---" * (6 + len(HEADLINE)) + "|")
    floor = None
    for arm in sorted(p for p in Path(args.dir).iterdir() if p.is_dir()):
        reports = [json.loads(f.read_text()) for f in sorted(arm.glob("seed*/eval.json"))]
        if not reports:
            continue
        floor = reports[0]["real_floor"]
        cells = []
        for key in HEADLINE:
            values = [r[key] for r in reports]
            seeds = f" ({', '.join(f'{v:.3g}' for v in values)})" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.3g}{seeds}")
        run = lambda key: statistics.mean(r["run"][key] for r in reports)  # noqa: E731
        print(f"| {arm.name} | {len(reports)} | {run('train_minutes'):.0f} | {run('steps'):.0f} | "
              f"{run('train_img_per_s'):.0f} | {reports[0]['protocol']['cfg']:g} | " + " | ".join(cells) + " |")
    if floor:
        print("| real-data floor | | | | | | " + " | ".join(f"{floor[k]:.3g}" for k in HEADLINE) + " |")


def grid(args) -> None:
    pipe = Pipeline.from_pretrained(args.checkpoint)
    names = prompt_sets()[args.set]
    if args.set == "seen":  # the colour-object prompts only (the rest is a random sample)
        names = [n for n in names if any(c in n for c in ("heart", "circle", "square", "book"))]
    prompts = [prompt_of(n) for n in names]
    images = torch.cat([pipe([p], seed=0, num_per_prompt=args.seeds) for p in prompts])
    body = make_grid(images, ncol=args.seeds, scale=2)
    label_width = 170
    canvas = Image.new("RGB", (body.width + label_width, body.height), "white")
    canvas.paste(body, (label_width, 0))
    draw, row = ImageDraw.Draw(canvas), body.height / len(prompts)
    for i, prompt in enumerate(prompts):
        draw.text((4, int(i * row + row / 2 - 6)), prompt, fill="black")
    canvas.save(args.out)
    print(f"{args.out}: {len(prompts)} prompts x {args.seeds} seeds")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("table", help="the study's table from DIR/ARM/seedS/eval.json")
    t.add_argument("--dir", required=True)
    t.set_defaults(fn=table)
    g = sub.add_parser("grid", help="one row per colour-object prompt of a set")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--set", choices=["seen", "heldout"], default="heldout")
    g.add_argument("--seeds", type=int, default=8)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=grid)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
