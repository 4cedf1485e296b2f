"""`t2i train | sample | prepare | vae | figures | bench | eval`: thin argument parsing over the
library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .config import PRESETS, get_preset

PRESET_HELP = "; ".join(f"{name}: {fn.__doc__.strip().splitlines()[0]}" for name, fn in PRESETS.items())


def add_run_arguments(p: argparse.ArgumentParser, default_preset: str, overrides_help: str) -> None:
    """What every training command takes: a preset with overrides, a run directory, a time
    budget, resume and the data directory (`t2i train`, `t2i vae train`)."""
    p.add_argument("--preset", default=default_preset,
                   help=f"one of {', '.join(PRESETS)} (default {default_preset})")
    p.add_argument("overrides", nargs="*", metavar="section.field=value", help=overrides_help)
    p.add_argument("--out", help="run directory (default runs/PRESET)")
    p.add_argument("--max-minutes", type=float, help="training-time budget; the LR schedule ends with it")
    p.add_argument("--resume", help="'latest' (this run's newest checkpoint) or a checkpoint/run path")
    p.add_argument("--data-dir", help="directory with the dataset files (else $T2I_DATA, cache, system)")


def run_dir(args, cfg) -> Path:
    return Path(args.out or f"runs/{cfg.preset}")


def build_config(args):
    cfg = get_preset(args.preset).override(args.overrides)
    if getattr(args, "data_dir", None):
        cfg = cfg.override([f"data.data_dir={args.data_dir}"])
    if getattr(args, "max_minutes", None) is not None:
        cfg = cfg.override([f"train.max_minutes={args.max_minutes}"])
    return cfg


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """`t2i train --nproc N ...` = `torchrun --standalone --nproc_per_node N -m t2i train ...`."""
    import subprocess

    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "t2i", *rest]
    return subprocess.call(cmd)


def cmd_train(args) -> int:
    import os

    from .train import Trainer

    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_torchrun(args.nproc, args.argv)
    cfg = build_config(args)
    trainer = Trainer(cfg, run_dir(args, cfg), resume=args.resume, progress=not args.quiet)
    try:
        final = trainer.train()
    finally:
        if trainer.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    if trainer.is_main:
        print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min on "
              f"{trainer.world} process(es); checkpoint: {final}")
    return 0


def cmd_prepare(args) -> int:
    from .data import cache_root, latent_cache_path, load_dataset, open_latent_cache
    from .text import PretrainedTextEncoder, build_text_encoder
    from .vae import load_codec

    cfg = build_config(args)
    done = []
    if cfg.data.dataset in ("folder", "hf"):
        from .captioned import image_cache_path, open_image_cache

        data = open_image_cache(cfg.data, rebuild=args.force, progress=not args.quiet)
        done.append(f"image cache {image_cache_path(cfg.data)}: {len(data)} images of shape "
                    f"{'x'.join(map(str, data.shape))}")
    else:
        data = load_dataset(cfg.data, "train")
    if cfg.vae.name:
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


def cmd_vae_train(args) -> int:
    from .vae import INFO_FILE, VAETrainer

    cfg = build_config(args)
    trainer = VAETrainer(cfg, run_dir(args, cfg), resume=args.resume, progress=not args.quiet)
    folder = trainer.train()
    info = json.loads((folder / INFO_FILE).read_text())
    print(f"trained {trainer.step} steps in {trainer.elapsed / 60:.1f} min; test PSNR "
          f"{info['test_psnr_db']:.2f} dB, latent scale {info['scaling_factor']:.4f}; VAE: {folder}")
    return 0


def cmd_vae_figures(args) -> int:
    import torch

    from .config import Config
    from .data import load_dataset
    from .figures import vae_figures
    from .vae import INFO_FILE, load_codec

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


FIGURES = ["denoising", "seeds", "progression", "noise", "curves"]


def cmd_figures(args) -> int:
    from . import figures
    from .checkpoint import load_config, resolve_checkpoint
    from .pipeline import Pipeline

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = resolve_checkpoint(args.run)
    run_dir = ckpt.parent.parent
    kwargs = dict(steps=args.steps, cfg=args.cfg)
    pipe = Pipeline.from_pretrained(ckpt) if {"denoising", "seeds"} & set(args.only) else None
    written = []
    for name in args.only:
        if name == "denoising":
            path = out / "denoising.png"
            figures.denoising_strip(pipe, pipe.default_prompts(), seed=args.seed,
                                    **kwargs).save(path)
        elif name == "seeds":
            path = figures.seeds_gif(pipe, out / "seeds.gif", seeds=args.seeds, **kwargs)
        elif name == "progression":
            path = out / "progression.png"
            figures.progression_grid(run_dir).save(path)
        elif name == "noise":
            path = out / "noise_levels.png"
            figures.noise_levels(load_config(ckpt)).save(path)
        else:
            path = figures.training_curves(run_dir, out / "curves.png")
        written.append(str(path))
    print("wrote " + ", ".join(written))
    return 0


def read_prompts(args) -> list[str]:
    prompts = list(args.prompt or [])
    if args.prompts_file:
        lines = Path(args.prompts_file).read_text().splitlines()
        prompts += [line.strip() for line in lines if line.strip()]
    return prompts


def cmd_sample(args) -> int:
    from .figures import denoising_strip
    from .images import make_grid, save_images
    from .pipeline import Pipeline

    pipe = Pipeline.from_pretrained(args.checkpoint, device=args.device)
    if args.clip_x0:
        pipe.config = pipe.config.override(["sample.clip_x0=true"])
    prompts = read_prompts(args) or pipe.default_prompts()
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


def cmd_demo(args) -> int:
    from .web import Limits, serve

    limits = Limits(max_steps=args.max_steps, max_images=args.max_images,
                    concurrency=args.concurrency, queue_size=args.queue_size)
    app = serve(args.checkpoint, args.host, args.port, args.share, args.device, limits,
                block=not args.load_test)
    if args.load_test:
        import json

        from .web import load_test

        report = load_test(f"http://{args.host}:{args.port}/", args.load_test,
                           prompt=args.load_prompt, steps=args.load_steps)
        app.close()
        print(json.dumps(report, indent=2))
        return 1 if report["errors"] else 0
    return 0


def cmd_bench(args) -> int:
    from .evaluate import benchmark

    cfg = build_config(args)
    report = benchmark(cfg, train_steps=args.train_steps, sample_images=args.sample_images)
    for key, value in report.items():
        print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")
    return 0


def print_report(report: dict) -> None:
    p, floor = report["protocol"], report["real_floor"]
    print(f"{p['images']} images from the class {p.get('prompts', 'names')} ({p['steps']} "
          f"{p['sampler']} steps, CFG {p['cfg']}, {report['sample_img_per_s']:.1f} img/s) "
          f"against {p['reference']}")
    print(f"{'':>12} {'generated':>10} {'real floor':>10}")
    for key in ("accuracy", "fd", "precision", "recall"):
        print(f"{key:>12} {report[key]:10.4f} {floor[key]:10.4f}")
    print(f"Inception FID: {report['inception_fid'] if report['inception_fid'] is not None else report['inception_note']}")
    names = list(report["per_class"])
    print(f"{'prompt':>12} {'acc':>6}  most confused with")
    for name, row in zip(names, report["confusion"]):
        i = names.index(name)
        others = sorted(((c, names[j]) for j, c in enumerate(row) if j != i and c), reverse=True)
        print(f"{name:>12} {report['per_class'][name]:6.2f}  " + ", ".join(f"{n} {c}" for c, n in others[:2]))


def cmd_eval(args) -> int:
    from . import evaluate

    if args.what == "train-classifier":
        out = args.out or "classifier"
        acc = evaluate.train_classifier(out, data_dir=args.data_dir, progress=not args.quiet)
        print(f"classifier test accuracy {acc:.4f}; weights in {out}")
        return 0
    if args.what == "readme":
        if not args.reports:
            raise ValueError("t2i eval readme: give the reports with --reports FILE [FILE ...]")
        evaluate.update_readme(args.readme, [Path(r) for r in args.reports])
        print(f"updated the results table in {args.readme} from {len(args.reports)} reports")
        return 0
    if not args.checkpoint:
        raise ValueError("--checkpoint is required")
    if args.what == "sweep":
        out = Path(args.out or Path(args.checkpoint) / "sweep")
        rows = evaluate.sweep(args.checkpoint, out, n_per_class=args.n_per_class,
                              steps_list=[int(v) for v in args.steps_list.split(",")],
                              samplers=args.samplers.split(","),
                              cfg_list=[float(v) for v in args.cfg_list.split(",")],
                              default_steps=args.steps, default_cfg=args.cfg, seed=args.seed,
                              progress=not args.quiet, reference_images=args.reference_images)
        print(f"{len(rows)} settings; wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")
        return 0
    report = evaluate.evaluate_checkpoint(args.checkpoint, n_per_class=args.n_per_class,
                                          steps=args.steps, cfg=args.cfg, sampler=args.sampler,
                                          seed=args.seed, inception=args.inception,
                                          reference_images=args.reference_images,
                                          prompts=args.prompts, clip_x0=args.clip_x0)
    print_report(report)
    path = Path(args.json) if args.json else evaluate.default_report_path(report)
    path.write_text(json.dumps(report, indent=2))
    print(f"report: {path}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t2i", description="Train and run small text-to-image transformers.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a preset",
                       description=f"Train a model. Presets: {PRESET_HELP}.")
    add_run_arguments(t, "fmnist", "typed config overrides, e.g. model.depth=8 train.lr=5e-4")
    t.add_argument("--nproc", type=int, help="data-parallel processes on this machine: a shortcut "
                                             "for `torchrun --standalone --nproc_per_node N -m t2i "
                                             "train ...` (train.batch_size is per process)")
    t.set_defaults(fn=cmd_train)

    pr = sub.add_parser("prepare", help="build the caches a preset trains from (images, latents, text)",
                        description="Build ahead of training what it would otherwise build on "
                                    "first use: a captioned folder or Hugging Face dataset read "
                                    "into a memory-mapped image cache (skipping bad images); the "
                                    "training set encoded through the preset's VAE into "
                                    "memory-mapped latents with a manifest (data checksum, VAE, "
                                    "scale, shapes, t2i version); a labelled dataset's captions "
                                    "encoded by a pretrained text encoder. A stale cache is "
                                    "rebuilt here.")
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
    vf.add_argument("--data-dir")
    vf.set_defaults(fn=cmd_vae_figures)

    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("--checkpoint", required=True, help="checkpoint directory or run directory")
    s.add_argument("--prompt", action="append", help="a prompt (repeatable); default: every class name")
    s.add_argument("--prompts-file", help="file with one prompt per line")
    s.add_argument("--num-per-prompt", type=int, default=1, help="images per prompt")
    s.add_argument("--seed", type=int, default=0, help="sample k of every prompt starts from seed + k")
    s.add_argument("--clip-x0", action="store_true",
                   help="clamp the predicted clean image to [-1, 1] each step (pixel space; for "
                        "noise-predicting models; default: the checkpoint's sample.clip_x0)")
    s.add_argument("--steps", type=int, help="sampling steps (default: the checkpoint's config)")
    s.add_argument("--cfg", type=float, help="guidance scale, 1 = off (default: the checkpoint's config)")
    s.add_argument("--sampler", choices=["euler", "heun", "ddim", "ddpm"],
                   help="euler/heun: ODE on a uniform grid; ddim: ODE on the cosine grid; ddpm: "
                        "ancestral (stochastic) on the cosine grid (default: the config's)")
    s.add_argument("--out", default="samples", help="output directory (default samples/)")
    s.add_argument("--strip", action="store_true", help="also write strip.png: the denoising steps")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    s.set_defaults(fn=cmd_sample)

    f = sub.add_parser("figures", help="figures of a run: denoising, seeds GIF, progression, ...",
                       description="Write figures of a run: denoising.png (noise to image, every "
                                   "class), seeds.gif (the class grid across seeds), "
                                   "progression.png (EMA samples across training), "
                                   "noise_levels.png (the training interpolation on real "
                                   "images), curves.png (loss, grad norm, LR, eval metrics).")
    f.add_argument("--run", required=True, help="run or checkpoint directory")
    f.add_argument("--out", default="figures", help="output directory (default figures/)")
    f.add_argument("--only", nargs="+", choices=FIGURES, default=FIGURES, help="which figures")
    f.add_argument("--seeds", type=int, default=12, help="frames of seeds.gif")
    f.add_argument("--seed", type=int, default=0, help="seed of the denoising figure")
    f.add_argument("--steps", type=int, help="sampling steps (default: the checkpoint's config)")
    f.add_argument("--cfg", type=float, help="guidance scale (default: the checkpoint's config)")
    f.set_defaults(fn=cmd_figures)

    d = sub.add_parser("demo", help="web demo: type a prompt, watch the image form",
                       description="Serve a Gradio app (pip install 't2i[demo]') over a checkpoint: "
                                   "prompt, steps, CFG, seed, sampler, number of images and update "
                                   "interval; the image updates as it denoises. Inputs are checked "
                                   "on the server; requests queue (bounded) and run --concurrency "
                                   "at a time.")
    d.add_argument("--checkpoint", help="checkpoint or run directory (default: the newest run under runs/)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    d.add_argument("--port", type=int, default=7860)
    d.add_argument("--share", action="store_true", help="also a temporary public link through Gradio")
    d.add_argument("--device", default="auto")
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

    e = sub.add_parser("eval", help="evaluate a checkpoint; sweeps; README table; classifier",
                       description="`t2i eval --checkpoint DIR`: generate N images per class "
                                   "prompt; report accuracy, FD, precision and recall in t2i's "
                                   "Fashion-MNIST classifier's feature space, each beside its "
                                   "real-data floor; writes a JSON report (default: "
                                   "RUN/eval_<checkpoint>_<sampler><steps>_cfg<scale>.json). "
                                   "`t2i eval sweep`: the same over sampling steps per sampler "
                                   "and over CFG scales, to CSV and PNG. `t2i eval readme "
                                   "--reports ...`: regenerate the README's results table. "
                                   "`t2i eval train-classifier --out DIR`: retrain the classifier.")
    e.add_argument("what", nargs="?", choices=["report", "sweep", "readme", "train-classifier"],
                   default="report")
    e.add_argument("--checkpoint", help="checkpoint or run directory")
    e.add_argument("--n-per-class", type=int, default=100, help="generated images per class")
    e.add_argument("--steps", type=int, default=25)
    e.add_argument("--cfg", type=float, default=3.0)
    e.add_argument("--sampler", default="euler", choices=["euler", "heun", "ddim", "ddpm"])
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--prompts", choices=["names", "heldout"], default="names",
                   help="prompt each class by its name, or by its held-out paraphrases (never "
                        "trained on; needs a pretrained text encoder)")
    e.add_argument("--clip-x0", action="store_true",
                   help="clamp the predicted clean image to [-1, 1] each step (DDPM's clip_denoised; "
                        "pixel space), as noise-predicting models need")
    e.add_argument("--inception", action="store_true",
                   help="also Inception FID via torchmetrics (needs it and its weights)")
    e.add_argument("--json", help="where to write the report")
    e.add_argument("--reference-images", type=int, default=10_000,
                   help="test images in the reference set (all 10,000 by default; fewer only "
                        "for quick checks, the report says how many)")
    e.add_argument("--steps-list", default="3,5,8,13,25,50", help="sweep: sampling steps")
    e.add_argument("--samplers", default="euler,heun", help="sweep: samplers")
    e.add_argument("--cfg-list", default="1,1.5,2,3,4,6", help="sweep: CFG scales (at --steps)")
    e.add_argument("--reports", nargs="+", help="readme: report JSON files, one row each")
    e.add_argument("--readme", default="README.md", help="readme: the file to update")
    e.add_argument("--out", help="train-classifier: output directory (default classifier/); "
                                 "sweep: output directory (default CHECKPOINT/sweep)")
    e.add_argument("--data-dir")
    e.set_defaults(fn=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    from .data import DataError

    import os

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    # Overrides may come anywhere among the options (argparse alone takes one positional run).
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides += extra
    args.argv = argv
    quiet = args.quiet or int(os.environ.get("RANK", "0")) != 0  # under torchrun, rank 0 talks
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, ImportError, DataError) as e:
        print(f"t2i {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
