"""`t2i train | sample | prepare | vae | bench | eval`: thin argument parsing over the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .config import PRESETS, get_preset

PRESET_HELP = "; ".join(f"{name}: {fn.__doc__.strip().splitlines()[0]}" for name, fn in PRESETS.items())


def build_config(args):
    cfg = get_preset(args.preset).override(args.overrides)
    if getattr(args, "data_dir", None):
        cfg = cfg.override([f"data.data_dir={args.data_dir}"])
    if getattr(args, "max_minutes", None) is not None:
        cfg = cfg.override([f"train.max_minutes={args.max_minutes}"])
    return cfg


def cmd_train(args) -> int:
    from .train import Trainer

    cfg = build_config(args)
    out = Path(args.out or f"runs/{cfg.preset}")
    trainer = Trainer(cfg, out, resume=args.resume, progress=not args.quiet)
    final = trainer.train()
    print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min; checkpoint: {final}")
    return 0


def cmd_prepare(args) -> int:
    from .data import dataset_info, latent_cache_path, open_latent_cache
    from .vae import load_codec

    cfg = build_config(args)
    if not cfg.vae.name:
        raise ValueError(f"preset {cfg.preset!r} trains in pixel space (vae.name is empty): "
                         "there is nothing to prepare")
    codec = load_codec(cfg, dataset_info(cfg.data)["shape"])
    data = open_latent_cache(cfg, codec, rebuild=True, force=args.force, progress=not args.quiet)
    print(f"latent cache {latent_cache_path(cfg)}: {len(data)} latents of shape "
          f"{'x'.join(map(str, data.shape))} (VAE {cfg.vae.name}, scale {codec.scale:.5g})")
    return 0


def cmd_vae_train(args) -> int:
    from .vae import INFO_FILE, VAETrainer

    cfg = build_config(args)
    out = Path(args.out or f"runs/{cfg.preset}")
    trainer = VAETrainer(cfg, out, resume=args.resume, progress=not args.quiet)
    folder = trainer.train()
    info = json.loads((folder / INFO_FILE).read_text())
    print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min; test PSNR "
          f"{info['test_psnr_db']:.2f} dB, latent scale {info['scaling_factor']:.4f}; VAE: {folder}")
    return 0


def cmd_vae_figures(args) -> int:
    import torch

    from .config import Config
    from .data import load_dataset
    from .evaluate import vae_figures
    from .vae import INFO_FILE, load_codec

    cfg = Config().override([f"vae.name={args.vae}"] + args.overrides)
    if args.data_dir:
        cfg = cfg.override([f"data.data_dir={args.data_dir}"])
    data = load_dataset(cfg.data, "test")
    codec = load_codec(cfg, data.shape)
    info_file = Path(args.vae) / INFO_FILE
    psnr = json.loads(info_file.read_text())["test_psnr_db"] if info_file.is_file() else None
    images = data.batch(torch.arange(args.n))[0]
    paths = vae_figures(codec, images, args.out, psnr=psnr)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def read_prompts(args) -> list[str]:
    prompts = list(args.prompt or [])
    if args.prompts_file:
        lines = Path(args.prompts_file).read_text().splitlines()
        prompts += [line.strip() for line in lines if line.strip()]
    return prompts


def cmd_sample(args) -> int:
    from .evaluate import denoising_strip
    from .images import make_grid, save_images
    from .pipeline import Pipeline

    pipe = Pipeline.from_pretrained(args.checkpoint, device=args.device)
    prompts = read_prompts(args) or pipe.networks["text"].class_names
    out = Path(args.out)
    kwargs = dict(steps=args.steps, cfg=args.cfg, sampler=args.sampler, seed=args.seed)
    images = pipe(prompts, num_per_prompt=args.num_per_prompt, **kwargs)
    save_images(images, out, args.num_per_prompt)
    make_grid(images, ncol=args.num_per_prompt if len(prompts) > 1 else min(len(images), 10),
              scale=2).save(out / "grid.png")
    print(f"wrote {len(images)} images and grid.png to {out}")
    if args.strip:
        denoising_strip(pipe, prompts, **kwargs).save(out / "strip.png")
        print(f"wrote the denoising strip to {out / 'strip.png'}")
    return 0


def cmd_bench(args) -> int:
    from .evaluate import benchmark

    cfg = build_config(args)
    report = benchmark(cfg, train_steps=args.train_steps, sample_images=args.sample_images)
    for key, value in report.items():
        print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import class_accuracy, train_classifier

    if args.what == "train-classifier":
        acc = train_classifier(args.out, data_dir=args.data_dir, progress=not args.quiet)
        print(f"classifier test accuracy {acc:.4f}; weights in {args.out}")
        return 0
    if not args.checkpoint:
        raise SystemExit("t2i eval: --checkpoint is required")
    report = class_accuracy(args.checkpoint, n_per_class=args.n_per_class, steps=args.steps,
                            cfg=args.cfg, sampler=args.sampler, seed=args.seed)
    names = list(report["per_class"])
    print(f"accuracy {report['accuracy']:.4f} on {report['images']} images ({report['steps']} "
          f"{report['sampler']} steps, CFG {report['cfg']}, {report['sample_img_per_s']:.1f} img/s); "
          f"classifier's own test accuracy {report['classifier_test_accuracy']:.4f}")
    print(f"{'prompt':>12} {'acc':>6}  most confused with")
    for name, row in zip(names, report["confusion"]):
        i = names.index(name)
        others = sorted(((c, names[j]) for j, c in enumerate(row) if j != i and c), reverse=True)
        print(f"{name:>12} {report['per_class'][name]:6.2f}  " + ", ".join(f"{n} {c}" for c, n in others[:2]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"report: {args.json}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t2i", description="Train and run small text-to-image transformers.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a preset",
                       description=f"Train a model. Presets: {PRESET_HELP}.")
    t.add_argument("--preset", default="fmnist", help=f"one of {', '.join(PRESETS)} (default fmnist)")
    t.add_argument("overrides", nargs="*", metavar="section.field=value",
                   help="typed config overrides, e.g. model.depth=8 train.lr=5e-4")
    t.add_argument("--out", help="run directory (default runs/PRESET)")
    t.add_argument("--max-minutes", type=float, help="training-time budget; the LR schedule ends with it")
    t.add_argument("--resume", help="'latest' (this run's newest checkpoint) or a checkpoint/run path")
    t.add_argument("--data-dir", help="directory with the dataset files (else $T2I_DATA, cache, system)")
    t.set_defaults(fn=cmd_train)

    pr = sub.add_parser("prepare", help="encode the dataset once into a memory-mapped latent cache",
                        description="Encode the training set through the preset's VAE into "
                                    "memory-mapped .npy latents with a manifest (data checksum, "
                                    "VAE, scale, shapes, t2i version). Training reads the cache "
                                    "(and builds it if missing); a stale cache is rebuilt here.")
    pr.add_argument("--preset", default="fmnist-latent")
    pr.add_argument("overrides", nargs="*", metavar="section.field=value")
    pr.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    pr.add_argument("--data-dir")
    pr.set_defaults(fn=cmd_prepare)

    v = sub.add_parser("vae", help="train our own VAE, or draw figures of one",
                       description="Our own latent space: `t2i vae train` fits a small KL "
                                   "autoencoder, `t2i vae figures` draws one.")
    vsub = v.add_subparsers(dest="what", required=True)
    vt = vsub.add_parser("train", help="train a small KL autoencoder (diffusers AutoencoderKL)",
                         description="Train a small KL autoencoder and export it to OUT/vae "
                                     "(loadable with AutoencoderKL.from_pretrained) with its "
                                     "latent scale measured from the data and its test PSNR in "
                                     "t2i_vae.json.")
    vt.add_argument("--preset", default="fmnist-vae")
    vt.add_argument("overrides", nargs="*", metavar="section.field=value",
                    help="e.g. vae.channels=32,64,64 vae.kl_weight=1e-5 train.lr=2e-3")
    vt.add_argument("--out", help="run directory (default runs/PRESET)")
    vt.add_argument("--max-minutes", type=float, help="training-time budget")
    vt.add_argument("--resume", help="'latest' or a checkpoint/run path")
    vt.add_argument("--data-dir")
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
    vf.add_argument("--data-dir")
    vf.set_defaults(fn=cmd_vae_figures)

    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("--checkpoint", required=True, help="checkpoint directory or run directory")
    s.add_argument("--prompt", action="append", help="a prompt (repeatable); default: every class name")
    s.add_argument("--prompts-file", help="file with one prompt per line")
    s.add_argument("--num-per-prompt", type=int, default=1, help="images per prompt")
    s.add_argument("--seed", type=int, default=0, help="sample k of every prompt starts from seed + k")
    s.add_argument("--steps", type=int, help="sampling steps (default: the checkpoint's config)")
    s.add_argument("--cfg", type=float, help="guidance scale, 1 = off (default: the checkpoint's config)")
    s.add_argument("--sampler", choices=["euler", "heun"], help="ODE solver (default: the config's)")
    s.add_argument("--out", default="samples", help="output directory (default samples/)")
    s.add_argument("--strip", action="store_true", help="also write strip.png: the denoising steps")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    s.set_defaults(fn=cmd_sample)

    b = sub.add_parser("bench", help="training and sampling throughput, FLOP utilisation",
                       description="Measure training img/s, sampling img/s and model FLOP "
                                   "utilisation against the fp32 and bf16 matmul peaks measured "
                                   "in the same run.")
    b.add_argument("--preset", default="fmnist")
    b.add_argument("overrides", nargs="*", metavar="section.field=value")
    b.add_argument("--train-steps", type=int, default=30, help="timed training steps")
    b.add_argument("--sample-images", type=int, default=100, help="images to sample")
    b.add_argument("--data-dir")
    b.set_defaults(fn=cmd_bench)

    e = sub.add_parser("eval", help="class accuracy of generated images; train the classifier",
                       description="`t2i eval --checkpoint DIR`: generate N images per class "
                                   "prompt and report the accuracy of t2i's Fashion-MNIST "
                                   "classifier on them. `t2i eval train-classifier --out DIR` "
                                   "retrains that classifier.")
    e.add_argument("what", nargs="?", choices=["accuracy", "train-classifier"], default="accuracy")
    e.add_argument("--checkpoint")
    e.add_argument("--n-per-class", type=int, default=100)
    e.add_argument("--steps", type=int, default=25)
    e.add_argument("--cfg", type=float, default=3.0)
    e.add_argument("--sampler", default="euler", choices=["euler", "heun"])
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", help="also write the report as JSON to this file")
    e.add_argument("--out", default="classifier", help="train-classifier: output directory")
    e.add_argument("--data-dir")
    e.set_defaults(fn=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    from .data import DataError

    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, ImportError, DataError) as e:
        print(f"t2i {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
