"""`t2i eval report | sweep | table | train-classifier` and `t2i bench`: one add_/cmd_ pair
per command."""

from __future__ import annotations

import json
from pathlib import Path

from .. import evaluation
from ..training.bench import benchmark, find_batch
from ..training.profile import format_profile, profile_training
from .args import (add_compile_argument, add_data_dir, add_preset_arguments, add_sampling_arguments, build_config,
                   sampling_kwargs)

EVAL_COMMANDS = ("report", "sweep", "table", "readme", "train-classifier")


def add_eval(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a checkpoint; sweeps; the results table; classifier",
                       description="Measure models with t2i's own judges: Fashion-MNIST models "
                                   "by its Fashion-MNIST classifier, emoji models by its emoji "
                                   "classifier and colour names. `t2i eval --checkpoint DIR` is "
                                   "`t2i eval report --checkpoint DIR`.")
    esub = e.add_subparsers(dest="what", required=True)
    r = esub.add_parser("report", help="accuracy, FD, precision, recall of a checkpoint",
                        description="Generate N images per class prompt (emoji: per prompt of "
                                    "its seen and held-out sets; shapes: per prompt of GenEval's "
                                    "six tasks); report accuracy (emoji: group, colour and "
                                    "retrieval accuracy; shapes: each task's and their mean), FD, "
                                    "precision and recall, each beside its real-data floor; write "
                                    "a JSON report "
                                    "(default: RUN/eval_<checkpoint>_<sampler><steps>_cfg<scale>.json).")
    add_protocol_arguments(r)
    r.add_argument("--prompts", choices=[*evaluation.PROMPT_SETS, "phrasings"], default="names",
                   help="prompt each class by its name, by its paraphrases (heldout: 3 per "
                        "class, paraphrases: 15), or by rare words for it (rare: 6 per class, "
                        "never tuned on); those need a pretrained text encoder; shapes: names "
                        "are the GenEval-style prompts, phrasings the same tasks in other words")
    r.add_argument("--inception", action="store_true",
                   help="also Inception FID via torchmetrics (needs it and its weights)")
    r.add_argument("--json", help="where to write the report")
    r.set_defaults(fn=cmd_eval_report)
    s = esub.add_parser("sweep", help="quality over sampling steps per sampler and over CFG scales",
                        description="Evaluate every sampler at every step count (at --cfg) and "
                                    "every CFG scale (Euler at --steps); write sweep.csv and sweep.png.")
    add_protocol_arguments(s)
    s.add_argument("--steps-list", default="3,5,8,13,25,50", help="sampling steps")
    s.add_argument("--samplers", default="euler,heun", help="samplers, comma-separated")
    s.add_argument("--cfg-list", default="1,1.5,2,3,4,6", help="CFG scales (at --steps)")
    s.add_argument("--out", help="output directory (default CHECKPOINT/sweep)")
    s.set_defaults(fn=cmd_eval_sweep)
    m = esub.add_parser("table", aliases=["readme"],
                         help="regenerate the docs' results table (docs/results/index.md) from reports")
    m.add_argument("--reports", nargs="+", required=True, help="report JSON files, one row each")
    m.add_argument("--readme", "--page", dest="readme", default="docs/results/index.md",
                   help="the Markdown file whose results markers to fill (default docs/results/index.md)")
    m.set_defaults(fn=cmd_eval_table)
    c = esub.add_parser("train-classifier", help="retrain an evaluation classifier (deterministic)")
    c.add_argument("--dataset", choices=["fashion-mnist", "emoji"], default="fashion-mnist",
                   help="whose judge: Fashion-MNIST's CNN, or the emoji group/subgroup CNN")
    c.add_argument("--out", default="classifier", help="output directory (default classifier/)")
    c.add_argument("--font", help="emoji: the Noto Color Emoji font (default: the usual font paths)")
    add_data_dir(c)
    c.set_defaults(fn=cmd_eval_train_classifier)


def add_protocol_arguments(p) -> None:
    """What `report` and `sweep` share: the checkpoint, the protocol's size and its sampling."""
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint or run directory, or a shipped model's name (fmnist-text)")
    p.add_argument("--n-per-class", type=int, default=100,
                   help="generated images per class (emoji: per prompt)")
    add_sampling_arguments(p)  # the checkpoint's own sampling, as `t2i sample` draws
    add_compile_argument(p)
    p.add_argument("--reference-images", type=int, default=10_000,
                   help="test images in the reference set (all 10,000 by default; fewer only "
                        "for quick checks, the report says how many)")
    add_data_dir(p)


def cmd_eval_report(args) -> int:
    report = evaluation.evaluate_checkpoint(
        args.checkpoint, n_per_class=args.n_per_class, inception=args.inception,
        reference_images=args.reference_images, prompts=args.prompts, compile=args.compile,
        **sampling_kwargs(args))
    print(evaluation.format_report(report))
    path = Path(args.json) if args.json else evaluation.default_report_path(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"report: {path}")
    return 0


def cmd_eval_sweep(args) -> int:
    out = Path(args.out or Path(args.checkpoint) / "sweep")
    rows = evaluation.sweep(args.checkpoint, out, n_per_class=args.n_per_class,
                            steps_list=[int(v) for v in args.steps_list.split(",")],
                            samplers=args.samplers.split(","),
                            cfg_list=[float(v) for v in args.cfg_list.split(",")],
                            default_steps=args.steps, default_cfg=args.cfg, seed=args.seed,
                            progress=not args.quiet, reference_images=args.reference_images,
                            compile=args.compile)
    print(f"{len(rows)} settings; wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")
    return 0


def cmd_eval_table(args) -> int:
    skipped = evaluation.update_results_table(args.readme, [Path(r) for r in args.reports])
    print(f"updated the results table in {args.readme} from {len(args.reports) - len(skipped)} reports"
          + (f"; left out {len(skipped)} with neither class accuracy nor GenEval tasks: {', '.join(skipped)}" if skipped else ""))
    return 0


def cmd_eval_train_classifier(args) -> int:
    if args.dataset == "emoji":
        acc = evaluation.train_emoji_classifier(args.out, font=args.font, progress=not args.quiet)
    else:
        acc = evaluation.train_classifier(args.out, data_dir=args.data_dir, progress=not args.quiet)
    print(f"classifier test accuracy {acc:.4f}; weights in {args.out}")
    return 0


def add_bench(sub) -> None:
    b = sub.add_parser("bench", help="training and sampling throughput, FLOP utilisation",
                       description="Measure training img/s, sampling img/s and model FLOP "
                                   "utilisation against the fp32 and bf16 matmul peaks measured "
                                   "in the same run, and the training step's peak memory (CUDA "
                                   "max allocated, or the CPU process's peak RSS). --find-batch "
                                   "instead times batch sizes 8, 16, 32, ... and names the "
                                   "largest that fits and the fastest.")
    add_preset_arguments(b, "fmnist")
    b.add_argument("--train-steps", type=int, default=30, help="timed training steps")
    b.add_argument("--sample-images", type=int, default=100, help="images to sample")
    b.add_argument("--find-batch", action="store_true",
                   help="find the largest batch that fits in memory and the one with the best img/s")
    b.add_argument("--memory-budget", type=float, default=0.0, metavar="MIB",
                   help="--find-batch: the peak memory allowed (default: the peak so far plus "
                        "90%% of the free GPU memory or available RAM)")
    b.add_argument("--max-batch", type=int, default=1024, help="--find-batch: the largest batch tried")
    b.add_argument("--profile", action="store_true",
                   help="instead: where a training step's time goes (data, forward, backward, "
                        "optimizer, EMA, other) and the operators that cost most (torch.profiler)")
    b.add_argument("--trace", metavar="FILE", help="--profile: also write a Chrome trace there")
    b.set_defaults(fn=cmd_bench)


def cmd_bench(args) -> int:
    if args.profile:
        print(format_profile(profile_training(build_config(args), steps=args.train_steps,
                                              trace=Path(args.trace) if args.trace else None)))
        return 0
    if args.find_batch:
        found = find_batch(build_config(args), args.memory_budget, args.max_batch)
        print(f"{'batch':>6} {'img/s':>8} {'peak MiB':>9}")
        for row in found["rows"]:
            print(f"{row['batch_size']:>6} {row['img_per_s']:8.1f} {row['peak_MiB']:9.0f}")
        print(f"largest that fits {found['budget_MiB']:.0f} MiB: {found['largest']}; "
              f"best img/s: {found['fastest']}")
        return 0
    report = benchmark(build_config(args), train_steps=args.train_steps,
                       sample_images=args.sample_images)
    for key, value in report.items():
        print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")
    return 0
