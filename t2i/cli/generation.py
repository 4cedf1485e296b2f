"""`t2i sample`, `t2i figures`, `t2i demo`: one add_/cmd_ pair per command."""

from __future__ import annotations

import json
from pathlib import Path

from ..apps import figures
from ..apps.explain import Explainer
from ..apps.web import Limits, load_test, serve
from ..checkpoint import CHECKPOINTS, load_config, resolve_checkpoint, run_directory
from ..pipeline import Pipeline
from ..training.trainer import EVAL_LOG
from ..utils.images import make_grid, save_images
from .args import add_compile_argument, add_sampling_arguments, positive_int, read_prompts, sampling_kwargs


def add_sample(sub) -> None:
    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("--checkpoint", required=True,
                   help="checkpoint or run directory, or a shipped model's name (fmnist-text)")
    s.add_argument("--prompt", action="append", help="a prompt (repeatable); default: every class name")
    s.add_argument("--prompts-file", help="file with one prompt per line")
    s.add_argument("--num-per-prompt", type=positive_int, default=1, help="images per prompt")
    add_sampling_arguments(s)
    s.add_argument("--out", default="samples", help="output directory (default samples/)")
    s.add_argument("--strip", action="store_true", help="also write strip.png: the denoising steps")
    s.add_argument("--explain", action="store_true",
                   help="also print what the text model understood of each prompt: how its "
                        "unknown words were read in the dictionary, how it was spelled, its head "
                        "phrase, its nearest training captions and classes by the text encoder's "
                        "cosine similarity (pretrained text encoders on labelled datasets; emoji "
                        "and shapes: the dictionary's reading)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    add_compile_argument(s)
    s.set_defaults(fn=cmd_sample)


def cmd_sample(args) -> int:
    pipe = Pipeline.from_pretrained(args.checkpoint, device=args.device, compile=args.compile)
    prompts = read_prompts(args) or pipe.default_prompts()
    if args.explain:
        for explanation in Explainer(pipe, args.dictionary).explain(prompts):
            print(explanation.format())
    out = Path(args.out)
    kwargs = sampling_kwargs(args)
    images = pipe(prompts, num_per_prompt=args.num_per_prompt, **kwargs)
    save_images(images, out, args.num_per_prompt)
    make_grid(images, ncol=args.num_per_prompt if len(prompts) > 1 else min(len(images), 10),
              scale=2).save(out / "grid.png")
    print(f"wrote {len(images)} images and grid.png to {out}")
    if args.strip:
        figures.denoising_strip(pipe, prompts, **kwargs).save(out / "strip.png")
        print(f"wrote the denoising strip to {out / 'strip.png'}")
    return 0


FIGURES = ["denoising", "seeds", "progression", "noise", "curves", "quality"]


def add_figures(sub) -> None:
    f = sub.add_parser("figures", help="figures of a run: denoising, seeds GIF, progression, ...",
                       description="Write figures of a run: denoising.png (noise to image, every "
                                   "class), seeds.gif (the class grid across seeds), "
                                   "progression.png (across training: one row per kept "
                                   "checkpoint at --seed, train with train.keep_every=N; else "
                                   "the run's EMA sample grids), "
                                   "noise_levels.png (the training interpolation on real "
                                   "images), curves.png (loss, grad norm, LR, eval metrics), "
                                   "quality.png (accuracy and FD against training minutes, "
                                   "from a run trained with train.eval_every=N).")
    f.add_argument("which", nargs="*", metavar="FIGURE",
                   help=f"which figures, e.g. `t2i figures progression --run RUN --seed 32` (one of "
                        f"{', '.join(FIGURES)}; same as --only)")
    f.add_argument("--run", required=True, help="run or checkpoint directory")
    f.add_argument("--out", default="figures", help="output directory (default figures/)")
    f.add_argument("--only", nargs="+", choices=FIGURES,
                   help="which figures (default: all; quality only where the run evaluated)")
    f.add_argument("--seeds", type=int, default=12, help="frames of seeds.gif")
    f.add_argument("--columns", type=int, default=0,
                   help="images per row of seeds.gif (default: all in one row; 5 lays ten classes out 2x5)")
    add_sampling_arguments(f, seed_help="seed of the denoising and progression figures")
    f.set_defaults(fn=cmd_figures)


def cmd_figures(args) -> int:
    unknown = sorted(set(args.which) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure {', '.join(unknown)}; one of {', '.join(FIGURES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = resolve_checkpoint(args.run)
    run_dir = run_directory(ckpt)
    kwargs = sampling_kwargs(args)
    seed = kwargs.pop("seed")  # the denoising and progression figures'; seeds.gif walks 0..N-1
    only = (args.which + (args.only or [])) or [
        f for f in FIGURES if f != "quality" or (run_dir / EVAL_LOG).exists()]
    pipe = Pipeline.from_pretrained(ckpt) if {"denoising", "seeds"} & set(only) else None
    written = []
    for name in only:
        if name == "denoising":
            path = out / "denoising.png"
            figures.denoising_strip(pipe, pipe.default_prompts(), seed=seed, **kwargs).save(path)
        elif name == "seeds":
            path = figures.seeds_gif(pipe, out / "seeds.gif", seeds=args.seeds,
                                     columns=args.columns, **kwargs)
        elif name == "progression":
            path = out / "progression.png"
            kept = sorted((run_dir / CHECKPOINTS).glob("step_*"))
            if len(kept) > 1:
                figures.checkpoint_progression([resolve_checkpoint(c) for c in kept], seed=seed,
                                               **kwargs).save(path)
            else:
                figures.progression_grid(run_dir).save(path)
        elif name == "noise":
            path = out / "noise_levels.png"
            figures.noise_levels(load_config(ckpt)).save(path)
        elif name == "curves":
            path = figures.training_curves(run_dir, out / "curves.png")
        else:
            path = figures.quality_curve(run_dir / EVAL_LOG, out / "quality.png")
        written.append(str(path))
    print("wrote " + ", ".join(written))
    return 0


def add_demo(sub) -> None:
    d = sub.add_parser("demo", help="web demo: type a prompt, watch the image form",
                       description="Serve a Gradio app (pip install 't2i[demo]') over a checkpoint: "
                                   "prompt, steps, CFG, seed, sampler, number of images and update "
                                   "interval; the image updates as it denoises. Inputs are checked "
                                   "on the server; requests queue (bounded) and run --concurrency "
                                   "at a time. The sampling flags set the app's initial values.")
    d.add_argument("--checkpoint", help="checkpoint or run directory, or a shipped model's name (default: the "
                        "newest run under runs/, else the shipped fmnist-text)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    d.add_argument("--port", type=int, default=7860)
    d.add_argument("--share", action="store_true", help="also a temporary public link through Gradio")
    d.add_argument("--device", default="auto")
    add_compile_argument(d)
    add_sampling_arguments(d, seed_help="the initial seed")
    d.add_argument("--max-steps", type=int, default=100, help="largest number of sampling steps accepted")
    d.add_argument("--max-images", type=int, default=16, help="largest number of images per request")
    d.add_argument("--concurrency", type=int, default=1, help="generations run at once")
    d.add_argument("--queue-size", type=int, default=64, help="requests that may wait; more are refused")
    d.add_argument("--load-test", type=int, default=0, metavar="N",
                   help="start the app, send N concurrent requests through its API, print latency "
                        "percentiles and memory, and exit")
    d.add_argument("--load-prompt", default="a bag", help="load test: the prompt")
    d.add_argument("--load-steps", type=int, default=25, help="load test: sampling steps")
    d.set_defaults(fn=cmd_demo)


def cmd_demo(args) -> int:
    limits = Limits(max_steps=args.max_steps, max_images=args.max_images,
                    concurrency=args.concurrency, queue_size=args.queue_size)
    app = serve(args.checkpoint, args.host, args.port, args.share, args.device, limits,
                block=not args.load_test, sampling=sampling_kwargs(args), compile=args.compile)
    if args.load_test:
        report = load_test(f"http://{args.host}:{args.port}/", args.load_test,
                           prompt=args.load_prompt, steps=args.load_steps)
        app.close()
        print(json.dumps(report, indent=2))
        return 1 if report["errors"] else 0
    return 0
