"""The recipe study behind the presets: train an arm (a preset plus overrides) for a fixed number
of CPU minutes with a given seed, evaluate it with `t2i eval`, and tabulate arms over seeds.

    # one arm, one seed (train, then evaluate; nothing else should run meanwhile)
    python studies/recipe_study.py run --dir study --arm batch16 --seed 0 \\
        --preset fmnist-text -- train.batch_size=16
    # the table: one row per arm, medians over its seeds (and each seed's numbers)
    python studies/recipe_study.py table --dir study
    # text arms: also score the held-out prompt sets (accuracy columns per set)
    python studies/recipe_study.py run ... --prompt-sets paraphrases,heldout -- data.captions=bank

Each run lands in DIR/ARM/seedS (the run directory, train.log, eval.json). Sampling for the
evaluation is the checkpoint's own unless --eval-args says otherwise, so an arm that changes the
preset's sampling defaults is measured the way a user would sample it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from t2i.evaluation.reports import sampling_label


def run_arm(args) -> None:
    out = Path(args.dir) / args.arm / f"seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    overrides = [o for o in args.overrides if o != "--"]
    (out / "arm.json").write_text(json.dumps({"preset": args.preset, "overrides": overrides,
                                              "minutes": args.minutes, "seed": args.seed}))
    t2i = [sys.executable, "-m", "t2i", "-q"]
    with open(out / "train.log", "w") as log:
        subprocess.run([*t2i, "train", "--preset", args.preset, "--out", str(out / "run"),
                        "--max-minutes", str(args.minutes), f"train.seed={args.seed}", *overrides],
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    for which in ["names", *filter(None, args.prompt_sets.split(","))]:
        suffix = "" if which == "names" else f"_{which}"
        with open(out / f"eval{suffix}.log", "w") as log:
            # 150 images per class: 10 per paraphrase (15 per class), 50 per older held-out prompt
            n = [] if which == "names" else ["--n-per-class", "150"]
            subprocess.run([*t2i, "eval", "report", "--checkpoint", str(out / "run"), "--prompts", which,
                            *n, "--json", str(out / f"eval{suffix}.json"), *shlex.split(args.eval_args)],
                           stdout=log, stderr=subprocess.STDOUT, check=True)
    print(summary_row(args.arm, [json.loads((out / "eval.json").read_text())]))


def summary_row(arm: str, reports: list[dict], extra: dict[str, list[dict]] | None = None) -> str:
    """One arm's table row: medians over its seeds (each seed's number in brackets); `extra`
    holds the reports of held-out prompt sets, whose accuracies become more columns."""
    def med(values, fmt):
        cell = fmt.format(statistics.median(values))
        return cell if len(values) == 1 else cell + " (" + ", ".join(fmt.format(v) for v in values) + ")"
    runs = [r["run"] for r in reports]
    cells = [arm, str(len(reports)), med([r["steps"] for r in runs], "{:.0f}"),
             med([r["train_img_per_s"] for r in runs], "{:.0f}"),
             sampling_label(reports[0]["protocol"]),
             med([100 * r["accuracy"] for r in reports], "{:.1f}%"),
             med([r["fd"] for r in reports], "{:.2f}"),
             med([r["precision"] for r in reports], "{:.3f}"),
             med([r["recall"] for r in reports], "{:.3f}")]
    cells += [med([100 * r["accuracy"] for r in rs], "{:.1f}%") for rs in (extra or {}).values()]
    return "| " + " | ".join(cells) + " |"


def table(args) -> None:
    sets = list(filter(None, args.prompt_sets.split(",")))
    print("| arm | seeds | steps | train img/s | sampling | accuracy | FD | precision | recall |"
          + "".join(f" {s} accuracy |" for s in sets))
    print("|---" * (9 + len(sets)) + "|")
    for arm in sorted(p for p in Path(args.dir).iterdir() if p.is_dir()):
        seeds = [d for d in sorted(arm.glob("seed*")) if all((d / f).is_file() for f in
                 ["eval.json", *(f"eval_{s}.json" for s in sets)])]
        if seeds:
            reports = [json.loads((d / "eval.json").read_text()) for d in seeds]
            extra = {s: [json.loads((d / f"eval_{s}.json").read_text()) for d in seeds] for s in sets}
            print(summary_row(arm.name, reports, extra))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and evaluate one arm at one seed")
    r.add_argument("--dir", required=True)
    r.add_argument("--arm", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--preset", default="fmnist-text")
    r.add_argument("--minutes", type=float, default=10.0)
    r.add_argument("--eval-args", default="", help="extra `t2i eval report` flags")
    r.add_argument("--prompt-sets", default="", help="held-out prompt sets to score besides the "
                   "class names, comma-separated (paraphrases, heldout)")
    r.add_argument("overrides", nargs="*", help="section.field=value")
    r.set_defaults(fn=run_arm)
    t = sub.add_parser("table", help="the study's markdown table")
    t.add_argument("--dir", required=True)
    t.add_argument("--prompt-sets", default="", help="add the accuracy of these held-out prompt "
                   "sets (arms lacking them are left out)")
    t.set_defaults(fn=table)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
