"""Quality against sampling cost and guidance: one checkpoint evaluated over sampling steps per
sampler and over CFG scales, to a CSV and a plot."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from ..pipeline import Pipeline
from ..utils.images import pyplot
from .protocol import Reference, evaluate_pipeline

SWEEP_FIELDS = ["sweep", "sampler", "steps", "nfe", "cfg", "accuracy", "fd", "precision", "recall"]


def sweep(checkpoint: str | Path, out: str | Path, n_per_class: int = 50,
          steps_list: tuple[int, ...] = (3, 5, 8, 13, 25, 50), samplers=("euler", "heun"),
          cfg_list: tuple[float, ...] = (1, 1.5, 2, 3, 4, 6), default_steps: Optional[int] = None,
          default_cfg: Optional[float] = None, seed: int = 0, progress: bool = True,
          reference_images: int = 10_000, compile: bool = False) -> list[dict]:
    """Quality against sampling cost (every sampler at every step count, at `default_cfg`) and
    against guidance (every CFG scale, Euler at `default_steps`); None: the checkpoint's own,
    as is its guidance interval. NFE counts velocity evaluations per image (Heun: 2 per step
    but 1 on the last; each is a CFG pair when guided). Writes sweep.csv and sweep.png (FD
    and accuracy against NFE and CFG). `compile` as for `Pipeline`."""
    pipe = Pipeline.from_pretrained(checkpoint, compile=compile)
    own = pipe.sampling(steps=default_steps, cfg=default_cfg)
    default_steps, default_cfg = own["steps"], own["cfg"]
    reference = Reference.for_pipeline(pipe, n_per_class, reference_images)
    settings = [("nfe", s, n, default_cfg) for s in samplers for n in steps_list]
    settings += [("cfg", "euler", default_steps, c) for c in cfg_list]
    rows, done = [], {}  # both sweeps meet at (euler, default_steps, default_cfg): evaluate it once
    for kind, sampler, steps, cfg in tqdm(settings, desc="sweep", disable=not progress):
        if (sampler, steps, cfg) not in done:
            done[sampler, steps, cfg] = evaluate_pipeline(pipe, reference, n_per_class, seed,
                                                          steps=steps, cfg=cfg, sampler=sampler)
        r = done[sampler, steps, cfg]
        rows.append({"sweep": kind, "sampler": sampler, "steps": steps,
                     "nfe": 2 * steps - 1 if sampler == "heun" else steps, "cfg": cfg,
                     **{k: r[k] for k in ("accuracy", "fd", "precision", "recall")}})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    plot_sweep(rows, reference.floor["fd"], out / "sweep.png")
    return rows


def plot_sweep(rows: list[dict], fd_floor: float, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for sampler in sorted({r["sampler"] for r in rows if r["sweep"] == "nfe"}):
        sel = [r for r in rows if r["sweep"] == "nfe" and r["sampler"] == sampler]
        axes[0, 0].plot([r["nfe"] for r in sel], [r["fd"] for r in sel], "o-", label=sampler)
        axes[1, 0].plot([r["nfe"] for r in sel], [r["accuracy"] for r in sel], "o-", label=sampler)
    sel = [r for r in rows if r["sweep"] == "cfg"]
    axes[0, 1].plot([r["cfg"] for r in sel], [r["fd"] for r in sel], "o-", color="C2")
    axes[1, 1].plot([r["cfg"] for r in sel], [r["accuracy"] for r in sel], "o-", color="C2")
    for ax in axes[0]:
        ax.axhline(fd_floor, color="gray", ls="--", label="real-data floor")
        ax.set_ylabel("FD (lower is better)")
        ax.set_yscale("log")
    for ax in axes[1]:
        ax.set_ylabel("class accuracy")
    axes[1, 0].set_xlabel("NFE (velocity evaluations per image)")
    axes[1, 0].set_xscale("log")
    cfg_steps = sel[0]["steps"] if sel else ""
    axes[1, 1].set_xlabel(f"CFG scale (Euler, {cfg_steps} steps)")
    axes[0, 0].legend()
    axes[0, 0].set_title("quality vs sampling cost")
    axes[0, 1].set_title("quality vs guidance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
