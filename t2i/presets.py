"""Named presets: a flat registry of constructors whose names and first doc lines tell the truth
(`t2i train --help` lists them). Each returns a full `Config`; overrides apply on top. A
comment gives the reason for a choice and the study page (docs/studies/) that measured it."""

from __future__ import annotations

import dataclasses
from typing import Callable

from .config import Config
from .sections import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    SampleConfig,
    TextConfig,
    TrainConfig,
    VAEConfig,
)


def fmnist() -> Config:
    """The default: the best Fashion-MNIST model a 2-core CPU trains in 10 minutes."""
    return Config(
        preset="fmnist",
        # On a CPU, images seen beat capacity at equal minutes: width 128 trains 1.8x the
        # images per second of width 192 (docs/studies/recipe.md), patch 7 (16 tokens) 2.3x
        # those of patch 4 (docs/studies/patch-size.md), and both score better.
        model=ModelConfig(width=128, depth=6, patch_size=7),
        # Time-bound: the schedule ends with the 10 minutes; steps is only a ceiling. A run of
        # a few thousand steps learns more per image at a high LR (docs/studies/recipe.md). At
        # 16 tokens a step's fixed costs weigh, so batch 64 trains more images per second than
        # 32, and scores better (docs/studies/patch-size.md).
        train=TrainConfig(max_minutes=10.0, steps=100_000, batch_size=64, lr=3e-3, eval_every=500),
        # Guidance on t in [0.1, 0.8) only: guiding near pure noise makes every sample of a
        # class alike and over-bright, and leaving the last steps unguided keeps FD and recall;
        # 12 Euler steps match 25 (docs/studies/guidance.md).
        sample=SampleConfig(steps=12, cfg=4.5, cfg_start=0.1, cfg_end=0.8),
    )


def fmnist_quick() -> Config:
    """Two CPU minutes: `fmnist` with 4 blocks instead of 6 and LR 4e-3, for a first look."""
    base = fmnist()
    return dataclasses.replace(
        base, preset="fmnist-quick", model=dataclasses.replace(base.model, depth=4),
        # ~1,000 steps: the fewer the steps, the higher the LR that pays (docs/studies/recipe.md).
        # Batch 32: in 2 minutes the number of steps counts most (measured at 32 only).
        train=dataclasses.replace(base.train, max_minutes=2.0, batch_size=32, lr=4e-3, warmup_steps=50,
                                  sample_every=250, eval_every=0),
        # Guided on [0.1, 0.9), as fmnist-text: better accuracy and FD (docs/studies/guidance.md)
        sample=dataclasses.replace(base.sample, cfg_start=0.1, cfg_end=0.9))


def debug() -> Config:
    """Seconds on a CPU: a tiny model on 512 images, for tests and smoke runs."""
    return Config(
        preset="debug",
        model=ModelConfig(width=32, depth=2, heads=2, patch_size=7),
        data=DataConfig(subset=512),
        train=TrainConfig(steps=20, batch_size=16, warmup_steps=2, log_every=5,
                          sample_every=0, ckpt_every=10, precision="fp32"),
        sample=SampleConfig(steps=4),
    )


def overfit() -> Config:
    """Memorise 8 images: the loss must fall far below what generalisation allows."""
    return Config(
        preset="overfit",
        model=ModelConfig(width=64, depth=2, patch_size=7),
        text=TextConfig(cond_drop=0.0),
        data=DataConfig(subset=8),
        train=TrainConfig(steps=300, batch_size=8, lr=3e-3, schedule="constant", warmup_steps=0,
                          sample_every=0, ckpt_every=300, precision="fp32", log_every=10),
    )


def fmnist_paper() -> Config:
    """The x0-prediction GPU recipe for Fashion-MNIST (in pixel space here: 28x28,
    patch 2, 196 tokens): width 384, 12 layers, 6 heads, MLP x4, batch 128 x 2 accumulation,
    constant LR 1e-3, 8,500 steps, EMA 0.999, x0 prediction with Beta(1, 2.5) noise levels in
    [0.01, 0.99], 25 sampling steps from noise level 0.99 to 0.01 (t 0.01 -> 0.99), as written."""
    return Config(
        preset="fmnist-paper",
        model=ModelConfig(width=384, depth=12, heads=6, mlp_ratio=4.0, patch_size=2),
        objective=ObjectiveConfig(kind="x0"),
        train=TrainConfig(steps=8500, batch_size=128, grad_accum=2, lr=1e-3, schedule="constant",
                          warmup_steps=0, ema_decay=0.999, sample_every=1000, ckpt_every=1000),
        sample=SampleConfig(steps=25, cfg=3.0, t_start=0.01, t_end=0.99),
    )


def fmnist_vae() -> Config:
    """`t2i vae train`: our KL autoencoder for Fashion-MNIST, 28x28x1 -> 7x7x4, 5 CPU minutes."""
    return Config(
        preset="fmnist-vae",
        # Native 28x28: resizing to 32x32 and back alone caps the PSNR at 23.9 dB.
        vae=VAEConfig(resolution=28, channels="16,32,64", layers_per_block=1, latent_channels=4),
        train=TrainConfig(max_minutes=5.0, steps=100_000, batch_size=64, lr=1e-3, warmup_steps=100,
                          sample_every=500, ckpt_every=1000, precision="fp32"),
    )


def fmnist_latent() -> Config:
    """The CPU preset in the latent space of our VAE (train it first with the fmnist-vae
    preset): 8x8x4 latents, 10 minutes."""
    return Config(
        preset="fmnist-latent",
        model=ModelConfig(width=192, depth=6, patch_size=1),
        vae=VAEConfig(name="runs/fmnist-vae/vae"),
        train=TrainConfig(max_minutes=10.0, steps=100_000, batch_size=32),
    )


def fmnist_paper_latent() -> Config:
    """The x0-prediction GPU recipe in SD's VAE latent space (the 64x64 SD-VAE latent recipe):
    images resized to 64x64 (grayscale as RGB) -> 8x8x4 latents (scale 0.18215), patch 1,
    width 384, 12 layers, 6 heads; training as fmnist-paper."""
    paper = fmnist_paper()
    return dataclasses.replace(
        paper, preset="fmnist-paper-latent",
        model=dataclasses.replace(paper.model, patch_size=1),
        vae=VAEConfig(name="stabilityai/sd-vae-ft-mse", scale=0.18215, resolution=64),
    )


def fmnist_tiny() -> Config:
    """The efficient linear-attention recipe: 16x16 images (resized in pixel space, decoded back
    to 28x28), patch 2, width 128, 4 heads, 3 layers, FF 256, linear attention, clean-image
    prediction, batch 128, AdamW (weight decay 0.05) at 3e-4 with cosine warm restarts, 10
    sampling steps; here for 10 CPU minutes."""
    return Config(
        preset="fmnist-tiny",
        model=ModelConfig(width=128, depth=3, heads=4, mlp_ratio=2.0, patch_size=2,
                          attention="linear"),
        vae=VAEConfig(resolution=16),
        objective=ObjectiveConfig(kind="x0"),
        train=TrainConfig(max_minutes=10.0, steps=100_000, batch_size=128, lr=3e-4,
                          weight_decay=0.05, schedule="cosine_restarts", cycles=4, warmup_steps=0,
                          min_lr_ratio=0.0, eval_every=500),
        sample=SampleConfig(steps=10, cfg=3.0),
    )


def fmnist_text() -> Config:
    """The default CPU recipe with real text (`pip install 't2i[text]'`); prompts are free text.
    Each class trains on its caption bank (WordNet kinds, definitions, parts, curated facets),
    half the draws its names in templates; the frozen all-MiniLM-L6-v2 hands the DiT one
    token, the sentence embedding, where paraphrases land close to what they paraphrase.
    Sampling grounds each prompt on its 8 nearest training captions, so an unseen phrasing is
    drawn where the model was trained (docs/studies/text.md)."""
    base = fmnist()
    return dataclasses.replace(base, preset="fmnist-text",
                               text=TextConfig(encoder="minilm", pooling="sentence"),
                               data=dataclasses.replace(base.data, captions="bank", template_share=0.5),
                               # Guided to t = 0.9, one Euler step past `fmnist`: on this
                               # model [0.1, 0.8) gave back accuracy for little FD
                               # (docs/studies/guidance.md)
                               sample=dataclasses.replace(base.sample, retrieve=8, cfg_start=0.1, cfg_end=0.9))


def fmnist_text_fewstep() -> Config:
    """`fmnist-text` distilled into a 1-step model: `t2i train --preset fmnist-text-fewstep
    --init runs/fmnist-text` (5 CPU minutes). A shortcut model trained for 1, 2 and 4 steps on
    the teacher's velocity with its guidance (4.5 from t = 0.2) folded in: one network
    evaluation per step, sampled with cfg 1. Half of each batch trains on steps along 4,096
    guided teacher paths (training/trajectories.py), whose targets are exact where the
    self-consistency chain adds error at each level. The loss weights each sample by
    1 / sqrt(its error) (adaptive_p 0.5, a pseudo-Huber loss), so the few samples still far off
    do not dominate the gradient. The step grid weights the levels: counts are drawn uniformly
    from it, so with 1 listed three times and 2 twice, half the step rows train the 1-step jump
    that the preset samples with. Each choice: docs/studies/few-step.md."""
    base = fmnist_text()
    return dataclasses.replace(
        base, preset="fmnist-text-fewstep",
        objective=ObjectiveConfig(kind="shortcut", step_grid="1,1,1,2,2,4", interval_fraction=0.75,
                                  guidance=4.5, guidance_start=0.2, trajectories=4096,
                                  trajectory_share=0.5, adaptive_p=0.5),
        train=dataclasses.replace(base.train, max_minutes=5.0, batch_size=32, lr=2e-3, warmup_steps=50),
        sample=SampleConfig(sampler="fewstep", steps=1, cfg=1.0, retrieve=base.sample.retrieve),
    )


def emoji() -> Config:
    """Colour emoji from their Unicode names (`data.dataset=emoji`, 1,603 training images of
    Noto Color Emoji, 32x32 RGB), free text through the frozen all-MiniLM-L6-v2, 30 CPU minutes.
    Pixel space, patch 4 (64 tokens), which beat our VAE's latent space (`emoji-vae`, then
    `emoji-latent`) at equal minutes; 30 minutes, so each emoji is seen ~130 times; recoloured
    copies of the coloured emoji (data.recolour), which teach colour words on shapes
    (docs/studies/emoji.md)."""
    return Config(
        preset="emoji",
        model=ModelConfig(width=128, depth=6, patch_size=4),
        text=TextConfig(encoder="minilm"),
        data=DataConfig(dataset="emoji", image_size=32, channels=3, recolour=True),
        train=TrainConfig(max_minutes=30.0, steps=100_000, batch_size=32, lr=3e-3,
                          eval_every=1000, eval_n_per_class=2),
        sample=SampleConfig(steps=12, cfg=4.5, cfg_start=0.2),
    )


def shapes() -> Config:
    """Composition: coloured shapes from exact captions (`data.dataset=shapes`, drawn on the
    fly, 32x32 RGB), judged GenEval-style (colour, count, position), 30 CPU minutes. The DiT
    cross-attends to every word piece of the frozen all-MiniLM-L6-v2: binding "red" to "circle"
    and telling "A left of B" from "B left of A" needs the words, not one pooled sentence. It
    predicts the clean image (xflow): flat shapes on white are easy to predict outright, and at
    equal minutes that drew them sharper and scored twice the velocity target's tasks; 4 blocks,
    not 6, for 1.5x the images per minute. It trains and samples nearer the noise (logit-normal
    times of mean -1.1, the sampling grid shifted by 3, as SD3): a scene's layout — how many
    objects, where — is decided there, and at 30 minutes that drew counts as asked more often
    in both seeds (docs/studies/shapes.md)."""
    return Config(
        preset="shapes",
        model=ModelConfig(width=128, depth=4, patch_size=4),
        text=TextConfig(encoder="minilm"),
        data=DataConfig(dataset="shapes", image_size=32, channels=3),
        objective=ObjectiveConfig(kind="xflow", logit_mean=-1.1),
        train=TrainConfig(max_minutes=30.0, steps=100_000, batch_size=32, lr=3e-3,
                          eval_every=1000, eval_n_per_class=2),
        sample=SampleConfig(steps=12, cfg=4.5, cfg_start=0.1, cfg_end=0.9, shift=3.0),
    )


def shapes_quick() -> Config:
    """`shapes` in 10 CPU minutes."""
    base = shapes()
    return dataclasses.replace(base, preset="shapes-quick",
                               train=dataclasses.replace(base.train, max_minutes=10.0))


def emoji_vae() -> Config:
    """`t2i vae train`: our KL autoencoder for the emoji, 32x32x3 -> 8x8x4, 5 CPU minutes."""
    return dataclasses.replace(
        emoji(), preset="emoji-vae", vae=VAEConfig(resolution=32, latent_channels=4),
        train=dataclasses.replace(fmnist_vae().train))


def emoji_latent() -> Config:
    """`emoji` in the latent space of our emoji VAE (train it first with the emoji-vae preset):
    8x8x4 latents, patch 1 (the same 64 tokens), 10 minutes: 15 with the VAE's 5, the study's
    match for `emoji --max-minutes 15`."""
    base = emoji()
    return dataclasses.replace(
        base, preset="emoji-latent", model=dataclasses.replace(base.model, patch_size=1),
        vae=VAEConfig(name="runs/emoji-vae/vae"),
        train=dataclasses.replace(base.train, max_minutes=10.0))


def cifar_clip() -> Config:
    """The educational design's phase 4, as written: CIFAR-10 (32x32 RGB) captioned "a photo of
    a {class}" only, a frozen CLIP text encoder (openai/clip-vit-base-patch32, its 77 tokens
    attended to by cross-attention), a DiT with adaLN, flow matching, 10% condition dropout,
    CFG 3. Needs CIFAR-10 and CLIP from the hub; offline, text.encoder=minilm stands in."""
    return Config(
        preset="cifar-clip",
        model=ModelConfig(width=256, depth=6, patch_size=4),
        text=TextConfig(encoder="openai/clip-vit-base-patch32"),
        data=DataConfig(dataset="cifar10", captions="photo"),
        train=TrainConfig(steps=20_000, batch_size=128, lr=3e-4),
        sample=SampleConfig(steps=25, cfg=3.0),
    )


def latent_ddpm() -> Config:
    """The latent-DDPM design: our KL VAE (train it first: --preset latent-ddpm-vae) maps 64x64
    RGB to 8x8x4; a U-Net with cross-attention (diffusers' UNet2DConditionModel) predicts the
    noise (eps) on the cosine schedule; a frozen pretrained text encoder (MiniLM offline; CLIP
    as written: text.encoder=openai/clip-vit-base-patch32); 10% condition dropout, DDPM
    ancestral sampling with CFG. Any captioned folder (a COCO folder as it is:
    data.dataset=folder --data-dir COCO) or HF dataset trains it; by default the emoji, at 64x64."""
    return Config(
        preset="latent-ddpm",
        model=ModelConfig(backbone="unet", width=128, unet_channels="64,128,256", layers_per_block=2),
        text=TextConfig(encoder="minilm"),
        data=DataConfig(dataset="emoji", image_size=64, channels=3),
        vae=VAEConfig(name="runs/latent-ddpm-vae/vae", resolution=64),
        objective=ObjectiveConfig(kind="eps"),
        train=TrainConfig(max_minutes=30.0, steps=100_000, batch_size=32, lr=2e-4, warmup_steps=500),
        sample=SampleConfig(sampler="ddpm", steps=50, cfg=3.0),
    )


def latent_ddpm_vae() -> Config:
    """`t2i vae train` for latent-ddpm: our KL autoencoder, 64x64x3 -> 8x8x4 (four levels of
    ResNet blocks, self-attention in the middle block, reconstruction + KL loss), 10 CPU minutes."""
    return dataclasses.replace(
        latent_ddpm(), preset="latent-ddpm-vae",
        vae=VAEConfig(resolution=64, channels="32,64,128,128", latent_channels=4),
        train=dataclasses.replace(fmnist_vae().train, max_minutes=10.0, batch_size=32))


def t2i2m_paper() -> Config:
    """The text-to-image-2M flow-matching GPU recipe ("stability" run): 64x64 RGB images of
    jackyhate/text-to-image-2M (streamed once into the image cache) through SD's VAE to 8x8x4,
    frozen T5-small (128 tokens), width 768, 12 heads, 12 blocks, t uniform, LR 5e-4 with
    warm-up from 10% over the first 5% of steps and cosine to 10%, 30k steps, effective batch 576
    (96 x 6 accumulation on one GPU; on N GPUs set train.grad_accum=6/N), 50 Euler steps. As
    written; our own presets differ (logit-normal t, warm-up from 0)."""
    return Config(
        preset="t2i2m-paper",
        model=ModelConfig(width=768, depth=12, heads=12, patch_size=1),
        text=TextConfig(encoder="google-t5/t5-small", max_length=128),
        data=DataConfig(dataset="hf", hf_name="jackyhate/text-to-image-2M", streaming=True,
                        image_size=64, channels=3, image_column="jpg", caption_column="json.prompt"),
        vae=VAEConfig(name="stabilityai/sd-vae-ft-mse", scale=0.18215, resolution=64),
        objective=ObjectiveConfig(t_sampling="uniform"),
        train=TrainConfig(steps=30_000, batch_size=96, grad_accum=6, lr=5e-4, schedule="cosine",
                          warmup_steps=1500, warmup_start=0.1, min_lr_ratio=0.1,
                          sample_every=1000, ckpt_every=1000),
        sample=SampleConfig(steps=50, cfg=3.0),
    )


def t2i2m_variant(name: str, steps: int, grad_accum: int, subset: int = 0) -> Callable[[], Config]:
    """A row of the text-to-image-2M preset table: `t2i2m-paper` (its "stability" run)
    with other steps, effective batch (96 x grad_accum on one GPU) and data subset; warm-up
    stays 5% of the steps (capped at 1,500)."""
    def preset() -> Config:
        base = t2i2m_paper()
        return dataclasses.replace(
            base, preset=name, data=dataclasses.replace(base.data, subset=subset),
            train=dataclasses.replace(base.train, steps=steps, grad_accum=grad_accum,
                                      warmup_steps=min(1500, steps // 20)))
    preset.__doc__ = f"{name}: {steps} steps, effective batch {96 * grad_accum}" + (
        f", the first {subset} images" if subset else "")
    return preset


PRESETS: dict[str, Callable[[], Config]] = {
    "fmnist": fmnist,
    "fmnist-quick": fmnist_quick,
    "debug": debug,
    "overfit": overfit,
    "fmnist-paper": fmnist_paper,
    "fmnist-vae": fmnist_vae,
    "fmnist-latent": fmnist_latent,
    "fmnist-paper-latent": fmnist_paper_latent,
    "fmnist-text": fmnist_text,
    "fmnist-tiny": fmnist_tiny,
    "fmnist-text-fewstep": fmnist_text_fewstep,
    "emoji": emoji,
    "emoji-vae": emoji_vae,
    "shapes": shapes,
    "shapes-quick": shapes_quick,
    "emoji-latent": emoji_latent,
    "cifar-clip": cifar_clip,
    "latent-ddpm": latent_ddpm,
    "latent-ddpm-vae": latent_ddpm_vae,
    "t2i2m-paper": t2i2m_paper,
    # The rest of the text-to-image-2M table ("stability" is t2i2m-paper itself). Where the
    # recipe leaves a value open (debug's and overfit's data), the choice is t2i's.
    "t2i2m-debug": t2i2m_variant("t2i2m-debug", 1_000_000, 3, subset=10_000),
    "t2i2m-overfit": t2i2m_variant("t2i2m-overfit", 5_000, 3, subset=576),
    "t2i2m-hparam-tuning": t2i2m_variant("t2i2m-hparam-tuning", 5_000, 3),
    "t2i2m-full-scale": t2i2m_variant("t2i2m-full-scale", 300_000, 6),
}


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; one of {sorted(PRESETS)}")
    return PRESETS[name]()


def overrides_from(config: Config) -> list[str]:
    """The `section.field=value` overrides that turn `config`'s preset into `config` (against
    the defaults for a custom config): with `t2i train --preset`, the command that remakes it."""
    base = get_preset(config.preset) if config.preset in PRESETS else Config()
    out = []
    for section in dataclasses.fields(Config):
        if section.name == "preset":
            continue
        ours, theirs = getattr(config, section.name), getattr(base, section.name)
        out += [f"{section.name}.{f.name}={getattr(ours, f.name)}" for f in dataclasses.fields(ours)
                if getattr(ours, f.name) != getattr(theirs, f.name)]
    return out
