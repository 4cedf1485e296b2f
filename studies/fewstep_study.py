"""The few-step table: checkpoints x sampling steps, with `t2i eval`'s metrics and sampling
images per second measured in the same process, and a grid of the same prompts per row.

    python studies/fewstep_study.py --out docs/results/fewstep \\
        --model "flow, CFG 3=runs/fmnist-text;cfg=3;interval=0:1" \\
        --model "flow, preset=runs/fmnist-text" --model "MeanFlow=runs/fmnist-text-fewstep" \\
        --steps 1,2,4,8,25 --grid-steps 1,25

Each --model is LABEL=CHECKPOINT, sampled as its checkpoint's config says (a flow model with its
guidance, a few-step model with its own rule) but for the number of steps and what follows the
checkpoint: `;cfg=SCALE` and `;interval=START:END` (the guidance interval). Writes
fewstep.csv, a markdown table (table.md) and, per model and grid step count, a grid of the class
names (grid-LABEL-STEPS.png). Run nothing else meanwhile: img/s is wall-clock.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import time
from pathlib import Path

from t2i.evaluation import Reference, evaluate_pipeline
from t2i.pipeline import Pipeline
from t2i.training.bench import sampling_speed
from t2i.utils.images import make_grid, seed_rows

FIELDS = ["model", "sampler", "steps", "nfe", "cfg", "accuracy", "fd", "precision", "recall",
          "img_per_s"]


def parse_model(spec: str) -> tuple[str, str, dict]:
    """LABEL=CHECKPOINT[;cfg=SCALE][;interval=START:END] -> (label, checkpoint, sampling). The
    checkpoint follows the last "=" before the options, so a label may hold one ("p = 0.5")."""
    head, *options = spec.split(";")
    label, checkpoint = head.rsplit("=", 1)
    sampling = {}
    for option in options:
        key, value = option.split("=", 1)
        if key == "cfg":
            sampling["cfg"] = float(value)
        elif key == "interval":
            sampling["cfg_interval"] = tuple(float(v) for v in value.split(":"))
        else:
            raise SystemExit(f"unknown option {key!r} in --model {spec!r} (cfg, interval)")
    return label, checkpoint, sampling


def network_evaluations(s: dict) -> int:
    """Network evaluations per image of the sampling settings `s`: a guided step inside the
    guidance interval costs two (Euler and the few-step rule: one evaluation per step)."""
    if s["cfg"] == 1.0:
        return s["steps"]
    start, end = s["cfg_interval"]
    return s["steps"] + sum(start <= i / s["steps"] < end for i in range(s["steps"]))


def demo_latency_ms(pipe: Pipeline, prompt: str, repeats: int = 10) -> float:
    """Median milliseconds from a demo request's start to its final image (PNG-ready grid),
    one image at the checkpoint's own steps, guidance and sampler."""
    from t2i.apps.web import Demo, Request

    demo = Demo(pipe)
    own = pipe.sampling()
    request = Request(prompt, own["steps"], own["cfg"], 0, own["sampler"], 1, own["steps"])
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        for _ in demo.stream(request):
            pass
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="LABEL=CHECKPOINT")
    p.add_argument("--steps", default="1,2,4,8,25")
    p.add_argument("--grid-steps", default="1,25")
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, reference, latencies = [], None, []
    for spec in args.model:
        label, checkpoint, sampling = parse_model(spec)
        pipe = Pipeline.from_pretrained(checkpoint)
        reference = reference or Reference.for_pipeline(pipe, args.n_per_class)
        names = pipe.default_prompts()
        for steps in (int(s) for s in args.steps.split(",")):
            report = evaluate_pipeline(pipe, reference, args.n_per_class, steps=steps, **sampling)
            s = pipe.sampling(steps=steps, **sampling)
            rows.append({"model": label, "sampler": s["sampler"], "steps": steps,
                         "nfe": network_evaluations(s), "cfg": s["cfg"],
                         **{k: report[k] for k in ("accuracy", "fd", "precision", "recall")},
                         "img_per_s": sampling_speed(pipe, names, 10, steps=steps, **sampling)})
            print(rows[-1], flush=True)
        latencies.append(f"{label}: {demo_latency_ms(pipe, names[0]):.0f} ms")
        for steps in (int(s) for s in args.grid_steps.split(",")):
            images = seed_rows(pipe(names, steps=steps, num_per_prompt=4, seed=0, **sampling),
                               len(names))
            slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
            make_grid(images, ncol=len(names), scale=2).save(out / f"grid-{slug}-{steps}.png")
    with open(out / "fewstep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| model | sampler | steps | network evals | accuracy | FD | precision | recall | img/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['sampler']} | {r['steps']} | {r['nfe']} | {100 * r['accuracy']:.1f}% | "
              f"{r['fd']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['img_per_s']:.0f} |"
              for r in rows]
    lines.append(f"\nReal-data floor (N = {args.n_per_class}/class): accuracy "
                 f"{100 * reference.floor['accuracy']:.1f}%, FD {reference.floor['fd']:.2f}, "
                 f"precision {reference.floor['precision']:.3f}, recall {reference.floor['recall']:.3f}")
    lines.append("\nDemo, one image at the checkpoint's own sampling settings, from the request "
                 "starting on the server to the final image leaving it (median of 10): "
                 + "; ".join(latencies))
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
