"""`t2i train`, `t2i prepare`, `t2i data show`, `t2i vae train | figures`, `t2i export`: one
add_/cmd_ pair per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from .. import evaluation
from ..apps.figures import vae_figures
from ..checkpoint import export_model, load_config, load_training_state, resolve_checkpoint
from ..codecs import load_codec
from ..config import Config
from ..data import (
    caption_grid,
    describe,
    format_description,
    image_cache_path,
    is_labelled,
    latent_cache_path,
    load_dataset,
    open_image_cache,
    open_latent_cache,
    unseen_split,
)
from ..presets import overrides_from
from ..text.encoders import ENCODERS, build_text_encoder, encode_captions_once
from ..training.trainer import Trainer
from ..training.vae import INFO_FILE, VAETrainer
from ..utils.fsutil import cache_root
from ..utils.runtime import distributed
from .args import (
    PRESET_HELP,
    add_data_dir,
    add_preset_arguments,
    add_run_arguments,
    build_config,
    command_line_fields,
    explicit_fields,
    positive_int,
    run_dir,
    without_option,
)


def add_train(sub) -> None:
    t = sub.add_parser("train", help="train a model from a preset",
                       description=f"Train a model. Presets: {PRESET_HELP}.")
    add_run_arguments(t, "fmnist", "typed config overrides, e.g. model.depth=8 train.lr=5e-4")
    t.add_argument("--init", help="start from this run's or checkpoint's weights (= train.init): "
                                  "fine-tune, or distil a flow model into a few-step one "
                                  "(--preset fmnist-text-fewstep, or objective.kind=shortcut|"
                                  "meanflow: the checkpoint becomes the frozen teacher)")
    t.add_argument("--nproc", type=int, help="data-parallel processes on this machine: a shortcut "
                                             "for `torchrun --standalone --nproc_per_node N -m t2i "
                                             "train ...` (train.batch_size is per process)")
    t.set_defaults(fn=cmd_train)


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """`t2i train --nproc N ...` = `torchrun --standalone --nproc_per_node N -m t2i train ...`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "t2i", *without_option(argv, "--nproc")]
    return subprocess.call(cmd)


def cmd_train(args) -> int:
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_torchrun(args.nproc, args.argv)
    cfg = build_config(args)
    trainer = Trainer(cfg, run_dir(args, cfg), resume=args.resume, progress=not args.quiet,
                      explicit=explicit_fields(args))
    try:
        final = trainer.train()
    finally:
        if distributed():
            dist.destroy_process_group()
    if trainer.is_main:
        print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min on "
              f"{trainer.world} process(es); checkpoint: {final}")
    return 0


def add_prepare(sub) -> None:
    pr = sub.add_parser("prepare", help="build the caches a preset trains from (images, latents, text)",
                        description="Build ahead of training what it would otherwise build on "
                                    "first use: a captioned folder or Hugging Face dataset read "
                                    "into a memory-mapped image cache (skipping bad images); the "
                                    "training set encoded through the preset's VAE into "
                                    "memory-mapped latents with a manifest (data checksum, VAE, "
                                    "scale, shapes, t2i version); the dataset's captions (up to "
                                    "50,000 distinct) encoded by a pretrained text encoder. A "
                                    "stale cache is rebuilt here.")
    add_preset_arguments(pr, "fmnist-latent")
    pr.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    pr.set_defaults(fn=cmd_prepare)


def cmd_prepare(args) -> int:
    cfg = build_config(args)
    done = []
    if args.force and cfg.data.dataset in ("folder", "hf"):
        open_image_cache(cfg.data, rebuild=True, progress=not args.quiet)
    # A captioned dataset's image cache is built here if stale; the training images are what
    # a latent cache encodes (without data.holdout's).
    data = load_dataset(cfg.data, "train", progress=not args.quiet)
    if not is_labelled(cfg.data):
        done.append(f"image cache {image_cache_path(cfg.data)}: {len(data)} training images of "
                    f"shape {'x'.join(map(str, data.shape))}")
    if cfg.latent:
        codec = load_codec(cfg)
        latents = open_latent_cache(cfg, codec, data, rebuild=True, force=args.force,
                                    progress=not args.quiet)
        done.append(f"latent cache {latent_cache_path(cfg)}: {len(latents)} latents of shape "
                    f"{'x'.join(map(str, latents.shape))} (VAE {cfg.vae.name}, scale {codec.scale:.5g})")
    # The caption set the run will encode once (training does the same: Trainer._precompute_captions).
    text = build_text_encoder(cfg.text, data.classes) if cfg.text.encoder not in ENCODERS else None
    info = encode_captions_once(text, data.all_captions(), cache_root(cfg.data) / "text", not args.quiet)
    if info:
        done.append(f"text embeddings of {info['captions']} captions ({cfg.text.encoder}): "
                    f"{info['tokens']} tokens, {info['bytes'] / 1e6:.1f} MB, "
                    f"{info['seconds']:.1f} s{' (already cached)' if info['cached'] else ''}")
    if not done:
        raise ValueError(f"preset {cfg.preset!r} needs no cache: pixel space, "
                         f"{cfg.data.dataset} read directly, text encoder {cfg.text.encoder}")
    print("\n".join(done))
    return 0


def add_vae(sub) -> None:
    v = sub.add_parser("vae", help="train our own VAE, or draw figures of one",
                       description="Our own latent space: `t2i vae train` fits a small KL "
                                   "autoencoder, `t2i vae figures` draws one.")
    vsub = v.add_subparsers(dest="what", required=True)
    vt = vsub.add_parser("train", help="train a small KL autoencoder (diffusers AutoencoderKL)",
                         description="Train a small KL autoencoder and export it to OUT/vae "
                                     "(loadable with AutoencoderKL.from_pretrained) with its "
                                     "latent scale measured from the data and its test PSNR in "
                                     "t2i_vae.json.")
    add_run_arguments(vt, "fmnist-vae", "typed config overrides, e.g. vae.channels=32,64,64 "
                                        "vae.kl_weight=1e-5 train.lr=2e-3")
    vt.set_defaults(fn=cmd_vae_train)
    vf = vsub.add_parser("figures", help="reconstruction, latent channels and latent noising",
                         description="Write reconstruction.png (with PSNR), latents.png and "
                                     "latent_noising.png for a VAE and a few test images.")
    vf.add_argument("overrides", nargs="*", metavar="section.field=value",
                    help="e.g. vae.resolution=64 vae.scale=0.18215 for SD's VAE")
    vf.add_argument("--vae", default="runs/fmnist-vae/vae",
                    help="AutoencoderKL folder or hub id (default runs/fmnist-vae/vae)")
    vf.add_argument("--n", type=int, default=8, help="test images shown")
    vf.add_argument("--out", default="figures", help="output directory (default figures/)")
    add_data_dir(vf)
    vf.set_defaults(fn=cmd_vae_figures)


def cmd_vae_train(args) -> int:
    cfg = build_config(args)
    trainer = VAETrainer(cfg, run_dir(args, cfg), resume=args.resume, progress=not args.quiet)
    folder = trainer.train()
    info = json.loads((folder / INFO_FILE).read_text())
    print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min; {info['psnr_split']} PSNR "
          f"{info['test_psnr_db']:.2f} dB, latent scale {info['scaling_factor']:.4f}; VAE: {folder}")
    return 0


def cmd_vae_figures(args) -> int:
    cfg = Config().override([f"vae.name={args.vae}"] + args.overrides + command_line_fields(args))
    data = load_dataset(cfg.data, unseen_split(cfg.data))
    codec = load_codec(cfg)
    info_file = Path(args.vae) / INFO_FILE
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    images = data.batch(torch.arange(args.n))[0]
    paths = vae_figures(codec, images, args.out, psnr=info.get("test_psnr_db"),
                        psnr_split=info.get("psnr_split", "test"))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def add_export(sub) -> None:
    e = sub.add_parser("export", help="a small sampling-only copy of a checkpoint, to share or ship",
                       description="Copy a checkpoint's config and EMA weights (16-bit) into a folder "
                                   "that `t2i sample --checkpoint DIR` and Pipeline.from_pretrained "
                                   "load, with a README saying how it was trained, the command "
                                   "that retrains it and its evaluation reports (eval*.json).")
    e.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    e.add_argument("--out", required=True, help="the folder to write (replaced if it exists)")
    e.add_argument("--report", action="append", default=[],
                   help="a `t2i eval` report of this checkpoint to include (repeatable)")
    e.set_defaults(fn=cmd_export)


def cmd_export(args) -> int:
    ckpt = resolve_checkpoint(args.checkpoint)
    config, (state, _) = load_config(ckpt), load_training_state(ckpt)
    texts = [Path(r).read_text() for r in args.report]
    reports = [json.loads(t) for t in texts]
    extras = {f"eval_{r['protocol'].get('prompts', 'names')}.json": t for r, t in zip(reports, texts)}
    extras["README.md"] = model_card(Path(args.out).name, config, state, reports)
    out = export_model(ckpt, Path(args.out), extras)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"exported {ckpt} to {out} ({size:.1f} MiB)")
    return 0


def model_card(name: str, config: Config, state: dict, reports: list[dict]) -> str:
    """The exported model's README: what it is, how it was trained, how to remake it."""
    tc = config.train
    command = " ".join(["t2i train --preset", config.preset, *overrides_from(config)])
    lines = [f"# {name}", "", f"`{config.preset}`, trained {state['step']:,} steps in "
             f"{state['elapsed'] / 60:.1f} minutes (batch {tc.batch_size * tc.grad_accum}); "
             "EMA weights in 16 bits.", "", "Retrain it (time-bound presets train for minutes, "
             "so the steps depend on the machine):", "", f"    {command}", "",
             "Sample it:", "", f"    t2i sample --checkpoint {name} --prompt \"...\"", ""]
    for report in reports:
        lines += ["Evaluation (`t2i eval`):", "", "```", evaluation.format_report(report), "```", ""]
    return "\n".join(lines)


def add_data(sub) -> None:
    d = sub.add_parser("data", help="look at a preset's training data first")
    what = d.add_subparsers(dest="data_command", required=True)
    show = what.add_parser("show", help="size, shape, captions, skipped images, and a captioned grid",
                           description="Print the training set of a preset (with overrides): its "
                                       "size, image shape, pixel statistics, caption statistics and "
                                       "what was skipped reading it; write a grid of random images, "
                                       "each with a caption drawn as training draws one.")
    add_preset_arguments(show, "fmnist")
    show.add_argument("--out", default="data-show.png", help="the grid's PNG (default data-show.png)")
    show.add_argument("--n", type=positive_int, default=24, help="images in the grid")
    show.add_argument("--seed", type=int, default=0, help="which images and captions")
    show.set_defaults(fn=cmd_data_show)


def cmd_data_show(args) -> int:
    data = load_dataset(build_config(args).data, "train", progress=not args.quiet)
    print(format_description(describe(data, seed=args.seed)))
    caption_grid(data, args.n, seed=args.seed).save(args.out)
    print(f"wrote {args.n} images with their captions to {args.out}")
    return 0
