"""`t2i train`, `t2i prepare`, `t2i vae train | figures`: one add_/cmd_ pair per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from ..codecs import load_codec
from ..config import Config
from ..data import (image_cache_path, is_labelled, latent_cache_path, load_dataset, open_image_cache,
                    open_latent_cache)
from ..figures import vae_figures
from ..fsutil import cache_root
from ..text import PretrainedTextEncoder, build_text_encoder
from ..train import Trainer
from ..vae_train import INFO_FILE, VAETrainer
from .args import (PRESET_HELP, add_data_dir, add_preset_arguments, add_run_arguments, build_config,
                   run_dir, without_option)


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
    trainer = Trainer(cfg, run_dir(args, cfg), resume=args.resume, progress=not args.quiet)
    try:
        final = trainer.train()
    finally:
        if trainer.world > 1:
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
                                    "scale, shapes, t2i version); a labelled dataset's captions "
                                    "encoded by a pretrained text encoder. A stale cache is "
                                    "rebuilt here.")
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
    # Only a labelled dataset has a finite caption set to encode ahead (free-form captions are
    # encoded as batches come), so the encoder is loaded only then.
    text = build_text_encoder(cfg.text, data.classes) if data.classes is not None else None
    if isinstance(text, PretrainedTextEncoder):
        info = text.precompute(data.classes.all_captions(), cache_root(cfg.data) / "text")
        done.append(f"text embeddings of {info['captions']} captions ({cfg.text.encoder}): "
                    f"{'x'.join(map(str, info['shape']))}, {info['bytes'] / 1e6:.1f} MB, "
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
    print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min; test PSNR "
          f"{info['test_psnr_db']:.2f} dB, latent scale {info['scaling_factor']:.4f}; VAE: {folder}")
    return 0


def cmd_vae_figures(args) -> int:
    cfg = Config().override([f"vae.name={args.vae}"] + args.overrides)
    if args.data_dir:
        cfg = cfg.override([f"data.data_dir={args.data_dir}"])
    data = load_dataset(cfg.data, "test")
    codec = load_codec(cfg)
    info_file = Path(args.vae) / INFO_FILE
    psnr = json.loads(info_file.read_text())["test_psnr_db"] if info_file.is_file() else None
    images = data.batch(torch.arange(args.n))[0]
    paths = vae_figures(codec, images, args.out, psnr=psnr)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
