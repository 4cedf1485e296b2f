"""Argument groups shared by several commands, declared once: a run (preset, overrides, out,
budget, resume, data dir) and sampling (steps, CFG, sampler, seed, clip)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..flow.samplers import SAMPLERS
from ..presets import PRESETS, get_preset
from ..text.prompts import clean_prompt

PRESET_HELP = "; ".join(f"{name}: {fn.__doc__.strip().splitlines()[0]}" for name, fn in PRESETS.items())


def add_run_arguments(p: argparse.ArgumentParser, default_preset: str, overrides_help: str) -> None:
    """What every training command takes: a preset with overrides, a run directory, a time
    budget, resume and the data directory (`t2i train`, `t2i vae train`)."""
    add_preset_arguments(p, default_preset, overrides_help)
    p.add_argument("--out", help="run directory (default runs/PRESET)")
    p.add_argument("--max-minutes", type=float, help="training-time budget; the LR schedule ends with it")
    p.add_argument("--resume", help="'latest' (this run's newest checkpoint) or a checkpoint/run path")


def add_preset_arguments(p: argparse.ArgumentParser, default_preset: str,
                         overrides_help: str = "typed config overrides, e.g. model.depth=8") -> None:
    """A preset, `section.field=value` overrides and the data directory (train, prepare, bench)."""
    p.add_argument("--preset", default=default_preset,
                   help=f"one of {', '.join(PRESETS)} (default {default_preset})")
    p.add_argument("overrides", nargs="*", metavar="section.field=value", help=overrides_help)
    add_data_dir(p)


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="directory with the dataset files (else $T2I_DATA, cache, system)")


def add_sampling_arguments(p: argparse.ArgumentParser, steps=None, cfg=None, sampler=None,
                           seed_help: str = "sample k of every prompt starts from seed + k") -> None:
    """How images are sampled: defaults None mean the checkpoint's own `sample` config (sample,
    figures, demo); evaluation passes its protocol's fixed defaults."""
    own = "the checkpoint's config"
    p.add_argument("--steps", type=int, default=steps,
                   help=f"sampling steps (default: {steps if steps is not None else own})")
    p.add_argument("--cfg", type=float, default=cfg,
                   help=f"guidance scale, 1 = off (default: {cfg if cfg is not None else own})")
    p.add_argument("--sampler", choices=list(SAMPLERS), default=sampler,
                   help="euler/heun: ODE on a uniform grid; ddim: ODE on the cosine grid; ddpm: "
                        "ancestral (stochastic) on the cosine grid; fewstep: a few-step "
                        "(meanflow/shortcut) model's own rule, 1 step is a whole image "
                        f"(default: {sampler if sampler is not None else own})")
    p.add_argument("--seed", type=int, default=0, help=f"{seed_help} (default 0)")
    p.add_argument("--cfg-interval", type=interval, default=None, metavar="START,END",
                   help="guide only while START <= t < END (t = 0 noise, 1 data), e.g. 0.2,0.9: "
                        "guidance near pure noise makes a prompt's samples all alike "
                        f"(default: {own})")
    p.add_argument("--shift", type=float, default=None, metavar="S",
                   help="move the sampling steps toward the noise by S (SD3's time shift; 1 = "
                        "none, 3 = half the steps below t = 0.25): for pictures whose layout is "
                        f"decided early, such as shapes (default: {own})")
    p.add_argument("--retrieve", type=int, default=None, metavar="K",
                   help="ground each prompt on its K nearest training captions (0 = off): unseen "
                        "phrasings draw what the text encoder says they are closest to; needs "
                        f"text.pooling=sentence on labelled data (default: {own})")
    p.add_argument("--dictionary", action=argparse.BooleanOptionalAction, default=None,
                   help="read the words of a prompt that the training captions never use in a "
                        "dictionary first (WordNet, t2i's supplement): 'a hoodie' is drawn as 'a "
                        "hooded sweatshirt'; --no-dictionary uses prompts as typed (default: "
                        f"{own})")
    p.add_argument("--clip-x0", action="store_true", default=None,
                   help="clamp the predicted clean image to [-1, 1] each step (DDPM's clip_denoised; "
                        f"pixel space), as noise-predicting models need (default: {own})")


def add_compile_argument(p: argparse.ArgumentParser) -> None:
    """`--compile`: sample through torch.compile (sample, eval, demo)."""
    p.add_argument("--compile", action="store_true",
                   help="run the model through torch.compile: on a CPU its first call compiles "
                        "for 30-45 s (5-10 s once cached; needs a C++ compiler), then sampling "
                        "runs ~1.3-1.6x faster: worth it for a demo, a sweep, thousands of images")


def sampling_kwargs(args) -> dict:
    """The shared sampling flags as `Pipeline.__call__` keywords."""
    return dict(steps=args.steps, cfg=args.cfg, sampler=args.sampler, seed=args.seed,
                clip_x0=args.clip_x0, cfg_interval=args.cfg_interval, retrieve=args.retrieve,
                dictionary=args.dictionary, shift=args.shift)


def interval(text: str) -> tuple[float, float]:
    """`START,END` as two floats with 0 <= START <= END <= 1 (argparse type)."""
    try:
        start, end = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START,END (two numbers), got {text!r}") from None
    if not 0 <= start <= end <= 1:
        raise argparse.ArgumentTypeError(f"need 0 <= START <= END <= 1, got {text!r}")
    return start, end


def run_dir(args, cfg) -> Path:
    return Path(args.out or f"runs/{cfg.preset}")


def build_config(args):
    """The preset with the command line's overrides and options, all applied at once: the
    config's rules are checked after the last of them (their order never matters)."""
    return get_preset(args.preset).override(args.overrides + command_line_fields(args))


def command_line_fields(args) -> list[str]:
    """The options that stand for config fields (--data-dir, --max-minutes, --init) as
    `section.field=value` overrides."""
    extra = []
    if getattr(args, "data_dir", None):
        extra.append(f"data.data_dir={args.data_dir}")
    if getattr(args, "max_minutes", None) is not None:
        extra.append(f"train.max_minutes={args.max_minutes}")
    if getattr(args, "init", None):
        extra.append(f"train.init={args.init}")
    return extra


def explicit_fields(args) -> set[str]:
    """The `section.field` names the command line sets: what a resumed run must not contradict."""
    return {item.partition("=")[0].strip() for item in args.overrides + command_line_fields(args)}


def read_prompts(args) -> list[str]:
    prompts = list(args.prompt or [])
    if args.prompts_file:
        lines = Path(args.prompts_file).read_text().splitlines()
        from_file = [line.strip() for line in lines if line.strip()]
        if not from_file:
            raise ValueError(f"--prompts-file {args.prompts_file} holds no prompt")
        prompts += from_file
    return [clean_prompt(p) for p in prompts]


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def without_option(argv: list[str], name: str) -> list[str]:
    """`argv` without the option `name` and its value (`--name VALUE` or `--name=VALUE`)."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            rest.append(arg)
    return rest


def interrupted_message(command: str, argv: list[str], e) -> str:
    """Where an interrupted run's checkpoint is and the command that resumes it: `argv` (global
    options dropped) without its --resume, with its run directory (the checkpoint's) spelled out."""
    start = next(i for i, a in enumerate(argv) if not a.startswith("-"))
    rest = without_option(argv[start:], "--resume")
    if not any(a == "--out" or a.startswith("--out=") for a in rest):
        rest += ["--out", str(e.checkpoint.parent.parent)]  # RUN/checkpoints/step_N
    return (f"t2i {command}: {e}; checkpoint: {e.checkpoint}\n"
            f"resume with: t2i {shlex.join(rest)} --resume latest")
