"""Guidance at zero training cost: one checkpoint evaluated (the `t2i eval` protocol) over CFG
scales, guidance intervals and Euler step counts, plus the mean brightness of the samples
against real images (the "over-bright samples" question).

    python studies/guidance_study.py --checkpoint runs/fmnist-text --out docs/results/guidance.csv

Each row: cfg, interval, steps, accuracy, FD, precision, recall, and mean pixel / fraction of
saturated (>= 0.98) pixels of the generated images next to those of real test images.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import torch

from t2i.data import load_fashion_mnist
from t2i.evaluation import Reference, generate_per_class
from t2i.pipeline import Pipeline


def brightness(images: torch.Tensor) -> tuple[float, float]:
    """Mean pixel in [0, 1] over the garment (pixels above 0.1) and the fraction of saturated
    garment pixels: flat, over-bright silhouettes score high on both."""
    x = (images.float() + 1) / 2
    garment = x > 0.1
    return x[garment].mean().item(), (x[garment] >= 0.98).float().mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--cfg", default="1.5,2,3,4", help="CFG scales")
    p.add_argument("--intervals", default="0-1,0.1-1,0.2-1,0.2-0.9",
                   help="guidance intervals START-END, comma-separated")
    p.add_argument("--steps", default="25", help="Euler steps")
    args = p.parse_args()
    pipe = Pipeline.from_pretrained(args.checkpoint)
    reference = Reference.for_pipeline(pipe, args.n_per_class)
    real = load_fashion_mnist("test").images[:1000].float() / 127.5 - 1
    mean, saturated = brightness(real)
    rows = [{"cfg": "real", "garment_mean": round(mean, 3), "saturated": round(saturated, 3)}]
    print(rows[-1], flush=True)
    intervals = [tuple(float(v) for v in s.split("-")) for s in args.intervals.split(",")]
    for cfg, interval, steps in itertools.product(
            [float(c) for c in args.cfg.split(",")], intervals, [int(s) for s in args.steps.split(",")]):
        images, labels = generate_per_class(pipe, args.n_per_class, steps=steps, cfg=cfg,
                                            sampler="euler", cfg_interval=interval)
        r = reference.score(images, labels)
        mean, saturated = brightness(images)
        rows.append({"cfg": cfg, "interval": f"{interval[0]}-{interval[1]}", "steps": steps,
                     **{k: round(r[k], 4) for k in ("accuracy", "fd", "precision", "recall")},
                     "garment_mean": round(mean, 3), "saturated": round(saturated, 3)})
        print(rows[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[1]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
