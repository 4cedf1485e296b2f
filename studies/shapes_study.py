"""The shapes study (docs/studies/shapes.md): which recipe draws colour, count and position as
asked, at equal CPU minutes. Each arm is a preset plus overrides, trained with a seed, then
judged GenEval-style on the development prompts and on the phrasing set.

    # one arm, one seed: train (nothing else should run meanwhile), then both reports
    python studies/shapes_study.py run --dir runs/study-shapes --arm tokens --seed 0 \\
        --preset shapes-quick -- text.pooling=tokens
    # re-judge an arm's checkpoint with other sampling (no training)
    python studies/shapes_study.py eval --dir runs/study-shapes --arm tokens --seed 0 \\
        --name cfg3 -- --cfg 3
    # the table: one row per arm (and sampling), medians over seeds, each seed in brackets
    python studies/shapes_study.py table --dir runs/study-shapes
    # the figure: one row per task, its prompts' images (green frame: the judge passes it)
    python studies/shapes_study.py grid --checkpoint runs/study-shapes/tokens/seed0/run \
        --out docs/figures/shapes-tasks.png
    # why a checkpoint does not compose: relations, counts, the text's share near the noise
    python studies/shapes_study.py probe --checkpoint runs/study-shapes/shapes-30min/seed0/run
    # keep the reports (not the checkpoints) with the docs
    python studies/shapes_study.py keep --dir runs/study-shapes --to docs/results/study-shapes

Each run lands in DIR/ARM/seedS: arm.json, train.log, run/ (the run directory), eval.json
(development prompts) and eval_phrasings.json, 10 images per prompt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HEADLINE = ("overall", "single_object", "two_object", "counting", "colors", "position", "color_attr",
            "held_out")
T2I = [sys.executable, "-m", "t2i", "-q"]


def judge(out: Path, name: str, extra: list[str]) -> None:
    """eval{name}.json and eval{name}_phrasings.json of the run in `out`."""
    for prompts, suffix in (("names", ""), ("phrasings", "_phrasings")):
        with open(out / f"eval{name}{suffix}.log", "w") as log:
            subprocess.run([*T2I, "eval", "report", "--checkpoint", str(out / "run"), "--prompts", prompts,
                            "--n-per-class", "10", "--json", str(out / f"eval{name}{suffix}.json"), *extra],
                           stdout=log, stderr=subprocess.STDOUT, check=True)


def run_arm(args) -> None:
    out = Path(args.dir) / args.arm / f"seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    overrides = [o for o in args.rest if o != "--"]
    (out / "arm.json").write_text(json.dumps({"preset": args.preset, "overrides": overrides,
                                              "seed": args.seed}))
    with open(out / "train.log", "w") as log:
        subprocess.run([*T2I, "train", "--preset", args.preset, "--out", str(out / "run"),
                        f"train.seed={args.seed}", *overrides],
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    judge(out, "", [])
    print(row(args.arm, [json.loads((out / "eval.json").read_text())]))


def eval_arm(args) -> None:
    out = Path(args.dir) / args.arm / f"seed{args.seed}"
    judge(out, f"_{args.name}", [o for o in args.rest if o != "--"])


def row(label: str, reports: list[dict]) -> str:
    """One table row: steps, img/s and each task, medians over `reports` (seeds in brackets)."""
    def med(values, fmt):
        cell = fmt.format(statistics.median(values))
        return cell if len(values) == 1 else cell + " (" + ", ".join(fmt.format(v) for v in values) + ")"
    runs = [r["run"] for r in reports]
    p = reports[0]["protocol"]
    cells = [label, str(len(reports)), med([r["steps"] for r in runs], "{:.0f}"),
             med([r["train_img_per_s"] for r in runs], "{:.0f}"),
             f"{p['sampler']} {p['steps']}, CFG {p['cfg']:g}"
             + (f", shift {p['shift']:g}" if p.get("shift", 1.0) != 1.0 else "")]
    cells += [med([r[k] for r in reports], "{:.2f}") for k in HEADLINE]
    return "| " + " | ".join(cells) + " |"


def table(args) -> None:
    print("| arm | seeds | steps | train img/s | sampling | " + " | ".join(HEADLINE) + " |")
    print("|---" * (5 + len(HEADLINE)) + "|")
    for arm in sorted(p for p in Path(args.dir).iterdir() if p.is_dir()):
        names = sorted({f.name for f in arm.glob("seed*/eval*.json")})
        for name in names:
            reports = [json.loads(f.read_text()) for f in sorted(arm.glob(f"seed*/{name}"))]
            label = arm.name + name.removeprefix("eval").removesuffix(".json").replace("_", " ")
            print(row(label, reports))


def grid(args) -> None:
    """One row per GenEval task: `--per-task` of its development prompts, one image each (seed
    0), framed green where the judge passes it and red where not, the prompt written below."""
    from PIL import Image, ImageDraw

    from t2i.data.shapes import parse
    from t2i.evaluation.shapes import detect, geneval_prompts, passes
    from t2i.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(args.checkpoint)
    sets = geneval_prompts()
    cell, label, scale = 140, 110, 4
    canvas = Image.new("RGB", (label + cell * args.per_task, (cell + 30) * len(sets)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (task, prompts) in enumerate(sets.items()):
        top = r * (cell + 30)
        draw.text((4, top + cell // 2), task.replace("_", " "), fill="black")
        step = max(1, len(prompts) // args.per_task)
        for c, prompt in enumerate(prompts[::step][:args.per_task]):
            image = pipe([prompt], seed=0)[0]
            ok = passes(parse(prompt), detect(image * 2 - 1))
            tile = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST)
            left = label + c * cell + (cell - tile.width) // 2
            canvas.paste(tile, (left, top + 4))
            draw.rectangle((left - 2, top + 2, left + tile.width + 1, top + 5 + tile.height),
                           outline=(0, 160, 0) if ok else (200, 0, 0), width=2)
            words, lines = prompt.split(), [""]
            for w in words:  # wrap at the cell's width
                lines[-1:] = [lines[-1] + " " + w] if len(lines[-1]) + len(w) < 24 else [lines[-1], w]
            for k, line in enumerate(lines[:2]):
                draw.text((label + c * cell + 2, top + tile.height + 8 + 10 * k), line.strip(), fill="black")
    canvas.save(args.out)
    print(f"{args.out}: {len(sets)} tasks x {args.per_task} prompts")


def probe(args) -> None:
    """Why a checkpoint does not compose: (1) the red object's centre minus the blue one's for
    "left of" and "right of" (32 images each, those showing both colours); (2) how many objects
    "two/three/four circles" draw; (3) the clean image predicted at t = 0.1 from 200 scenes no
    run trains on (indices 100000+), with the caption, the null and another scene's caption (an
    xflow checkpoint: its network outputs the clean image); (4) the clean image predicted from
    pure noise (t = 0, what the text alone says: the mean scene of the prompt) for "left of" and
    "right of", its red mass's centre minus its blue mass's, beside the same in the mean of the
    training scenes of that caption."""
    import numpy as np
    import torch

    from t2i.data.shapes import parse, render_meaning, scene
    from t2i.evaluation.shapes import detect
    from t2i.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(args.checkpoint, precision="fp32")
    if pipe.config.objective.kind != "xflow":
        raise SystemExit("probe reads the network's output as the clean image: an xflow checkpoint")
    for relation in ("to the left of", "to the right of"):
        offsets = []
        for x in pipe([f"a red circle {relation} a blue square"], seed=0, num_per_prompt=32) * 2 - 1:
            found = detect(x)
            red, blue = ([d.x for d in found if d.colour == c] for c in ("red", "blue"))
            if red and blue:
                offsets.append(np.mean(red) - np.mean(blue))
        print(f"{relation}: red minus blue centre {np.mean(offsets):+.1f} px ({len(offsets)} of 32 show both)")
    for n in ("two", "three", "four"):
        counts = [len(detect(x)) for x in pipe([f"{n} circles"], seed=0, num_per_prompt=16) * 2 - 1]
        print(f"{n} circles: {np.mean(counts):.2f} objects on average")
    scenes = [scene(100_000 + i, 0) for i in range(200)]
    x = torch.stack([torch.from_numpy(image).float() / 127.5 - 1 for image, _, _ in scenes])
    backbone = pipe.networks["backbone"]
    (tokens, mask), null = pipe.condition([captions[0] for _, captions, _ in scenes])  # padded alike
    other = torch.roll(torch.arange(len(x)), 1)
    t = 0.1
    x_t = (1 - t) * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) + t * x
    with torch.no_grad():
        errors = [(backbone(x_t, torch.full((len(x),), t), *cond) - x).pow(2).mean().item()
                  for cond in ((tokens, mask), null, (tokens[other], mask[other]))]
    print("clean image at t = 0.1, squared error: caption {:.3f}, null {:.3f}, another scene's {:.3f}".format(*errors))
    for relation in ("to the left of", "to the right of"):
        prompt = f"a red circle {relation} a blue square"
        noise = torch.randn((64, *x.shape[1:]), generator=torch.Generator().manual_seed(1))
        cond, _ = pipe.condition([prompt] * len(noise))
        with torch.no_grad():
            mean = backbone(noise, torch.zeros(len(noise)), *cond).mean(0)
        truth = torch.stack([torch.from_numpy(render_meaning(parse(prompt), np.random.default_rng(i))).float()
                             / 127.5 - 1 for i in range(256)]).mean(0)
        print(f"{relation}, at t = 0: red minus blue centre {colour_offset(mean):+.1f} px "
              f"(the mean training scene: {colour_offset(truth):+.1f})")


def colour_offset(image) -> float:
    """The horizontal centre of an image's red mass minus its blue mass's, in pixels: each
    pixel weighted by how far its red (blue) channel stands above the other two."""
    import torch

    rgb = (image.clamp(-1, 1) + 1) / 2
    columns = torch.arange(rgb.shape[-1], dtype=rgb.dtype)
    centres = []
    for i in (0, 2):
        others = [c for c in range(3) if c != i]
        weight = (rgb[i] - rgb[others].max(0).values).clamp(min=0)
        centres.append(float((weight.sum(0) * columns).sum() / weight.sum().clamp(min=1e-6)))
    return centres[0] - centres[1]


def keep(args) -> None:
    """Copy every arm's reports and settings (not its run directory) to `--to`."""
    for f in Path(args.dir).glob("*/seed*/*"):
        if f.suffix in (".json", ".log") and f.is_file():
            target = Path(args.to) / f.relative_to(args.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and judge one arm at one seed")
    e = sub.add_parser("eval", help="judge an arm's checkpoint again with other sampling flags")
    for q in (r, e):
        q.add_argument("--dir", required=True)
        q.add_argument("--arm", required=True)
        q.add_argument("--seed", type=int, default=0)
    r.add_argument("--preset", default="shapes-quick")
    r.add_argument("rest", nargs="*", help="section.field=value overrides")
    r.set_defaults(fn=run_arm)
    e.add_argument("--name", required=True, help="the reports' suffix: eval_NAME.json")
    e.add_argument("rest", nargs="*", help="`t2i eval report` flags, after --")
    e.set_defaults(fn=eval_arm)
    t = sub.add_parser("table", help="the study's markdown table")
    t.add_argument("--dir", required=True)
    t.set_defaults(fn=table)
    g = sub.add_parser("grid", help="a figure: one row per task, its prompts drawn once")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--per-task", type=int, default=6)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=grid)
    k = sub.add_parser("keep", help="copy the reports (not the checkpoints) beside the docs")
    k.add_argument("--dir", required=True)
    k.add_argument("--to", required=True)
    k.set_defaults(fn=keep)
    b = sub.add_parser("probe", help="relations, counts and what the text explains near the noise")
    b.add_argument("--checkpoint", required=True)
    b.set_defaults(fn=probe)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
