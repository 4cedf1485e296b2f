"""t2i: train and run small text-to-image transformers, from a laptop CPU to many GPUs.

`import t2i` is cheap: `Config`, `PRESETS`, `get_preset`, `Pipeline` and `Trainer` load their
modules (and torch) on first use.

The package is layered: each module imports only modules listed above it, so the tree reads
top-down and has no import cycle (tests/test_layers.py checks this tree against the code, and
that the README's layout is its top level):

```
t2i/
  _version.py      the version, importing nothing
  fields.py        typed, validated config fields: Section, rules, ConfigError, parsing
  sections.py      the config's sections (model, text, data, ...): fields, defaults, rules
  config.py        Config, the sections together: JSON, `section.field=value` overrides
  presets.py       PRESETS: named constructors of full configs, each with its reason
  utils/           what every layer uses: files, images, the runtime
    fsutil.py        atomic files and folders; cache roots
    images.py        grids, PNGs, titles, HSV
    runtime.py       device, precision (decided by timing the real step), distributed helpers
  flow/            the maths: noise paths, objectives, samplers (t = 0 noise, t = 1 data)
    paths.py         interpolation, the cosine schedule's alpha/sigma, time grids
    fewstep.py       few-step objectives (MeanFlow, shortcut): average velocity over an interval
    objectives.py    OBJECTIVES: flow, x0, eps, v — each read as a velocity
    samplers.py      SAMPLERS: Euler, Heun, DDIM, DDPM, few-step over velocity(x, t); guidance
  models/          BACKBONES: forward(x_t, t, tokens, mask) -> prediction
    dit.py           the DiT: patches, sin-cos positions, adaLN-Zero, self/cross-attention, MLP
    unet.py          the U-Net: diffusers' UNet2DConditionModel behind the same call
  text/            prompts to tokens, and reading a free-text prompt
    prompts.py       what a prompt may be: text, bounded, no control or bidi characters
    wordnet.py       WordNet 3.0's nouns: synsets, lemmas, glosses, hypernyms, base forms
    lexicon.py       the dictionary: a prompt's unknown words read in WordNet and t2i's supplement
    captions.py      class names, synonyms, templates, caption banks of labelled datasets
    caption_table.py a finite caption set's encoder outputs, encoded once, looked up per batch
    spelling.py      did-you-mean for prompts against the training captions' words
    encoders.py      ENCODERS: none, onehot, learned, pretrained (transformers); null condition
    retrieval.py     grounding: the training captions nearest a prompt (read, spelled, head phrase)
  data/            DATASETS: images with a label or captions, loaded or drawn
    base.py          ImageDataset (uint8 images + a label or captions each), EpochSampler
    filenames.py     captions from file and folder names (clip-art folders)
    download.py      where files are looked for; atomic, verified downloads
    coco.py          COCO's captions_*.json annotations
    idx.py           Fashion-MNIST and MNIST (IDX, checksummed)
    cifar.py         CIFAR-10 (pickles read by an arrays-only unpickler)
    captioned.py     captioned folders and Hugging Face datasets -> memory-mapped image cache
    emoji.py         Noto Color Emoji rendered and captioned with Unicode names
    shapes.py        coloured shapes drawn on the fly, exact captions and their grammar
    registry.py      DATASETS: load_dataset, dataset_info, is_labelled
    latents.py       memory-mapped latent caches with manifests
    show.py          `t2i data show`: what a dataset holds; a captioned grid
  checkpoint.py    config.json + safetensors checkpoints, atomic; exported and shipped models
  codecs.py        pixel / AutoencoderKL codecs between images and the backbone's space
  pipeline.py      build_networks; Pipeline.from_pretrained(dir)(prompts, steps, cfg, seed)
  evaluation/      judging generated images: classifiers, metrics, protocol, reports
    metrics.py       Fréchet distance, precision/recall, Inception FID
    classifier.py    the small classifiers that judge Fashion-MNIST images
    colour.py        dominant colours of an image
    protocol.py      reference statistics, per-prompt generation, reports as dicts
    emoji.py         the emoji judge: nearest emoji, colour, names
    shapes.py        the GenEval-style judge of shapes: an exact detector, six tasks
    judges.py        which judge a dataset has; evaluate a pipeline or checkpoint
    sweep.py         quality against steps, sampler and CFG
    reports.py       report files, the results table, the worst prompts
    validation.py    held-out loss per time bucket
  training/        the one loop and the trainers on it
    progress.py      a progress bar over the budget; TensorBoard and W&B
    monitor.py       data and predicted-velocity statistics per time bucket
    signals.py       SIGINT/SIGTERM: stop after the step, or at once in work between steps
    loop.py          the loop: budget, LR schedule, optimizer step, checkpoints, resume, signals
    denoiser.py      the trainable networks as one module, and a few-step loss's view of it
    trajectories.py  teacher trajectories for few-step distillation
    trainer.py       the denoiser trainer: condition dropout, EMA, samples, evaluation, DDP
    vae.py           our KL autoencoder's trainer; export with the measured latent scale
    bench.py         throughput, MFU and peak memory through the public calls; batch finder
    profile.py       where a training step's time goes: phases and top operators
  apps/            programs over the pipeline
    explain.py       `--explain`: how a prompt was read, its nearest captions and classes
    figures.py       denoising strip, seeds GIF, training progression, curves, VAE figures
    web.py           the Gradio demo: streamed frames, input limits, bounded queue, load test
  cli/             `t2i <command>`, thin over the above
    args.py          the argument groups commands share (a run, a preset, sampling)
    training.py      train, prepare, data, vae, export
    generation.py    sample, figures, demo
    evaluation.py    eval, bench
```
"""

from ._version import __version__

_EXPORTS = {"Config": "config", "PRESETS": "presets", "get_preset": "presets",
            "Pipeline": "pipeline", "Trainer": "training"}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 't2i' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
