"""The config's sections, one frozen dataclass per concern — model, text, data, VAE, objective,
training, sampling: each field's type, default and why, and the rules that bound it (checked by
`fields.Section` whenever a section is built). `config.Config` puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .fields import INT_LIST, POSITIVE, Section, at_least, between, choice, from_to

# The names the registries below the config resolve (tests/test_config.py keeps them equal to
# BACKBONES, OBJECTIVES, SAMPLERS, DATASETS, text POOLINGS and the LR schedules): checked here,
# when a config is built, so a typo fails before training rather than after it.
BACKBONE_NAMES = ("dit", "unet")
OBJECTIVE_NAMES = ("eps", "flow", "meanflow", "shortcut", "v", "x0", "xflow")
PAIRING_NAMES = ("independent", "ot")
SAMPLER_NAMES = ("ddim", "ddpm", "euler", "fewstep", "heun")
DATASET_NAMES = ("cifar10", "emoji", "fashion-mnist", "folder", "hf", "mnist", "shapes")
SCHEDULE_NAMES = ("constant", "cosine", "cosine_restarts")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
POOLING_NAMES = ("both", "sentence", "tokens")


@dataclass(frozen=True)
class ModelConfig(Section):
    """The backbone: which one, and its size (width, depth, heads, patches)."""
    backbone: str = "dit"  # dit | unet (diffusers UNet2DConditionModel with cross-attention)
    width: int = 256  # transformer width D; cost grows ~D^2 per token (unet: cross-attention width)
    depth: int = 6  # number of blocks; cost grows linearly
    heads: int = 0  # attention heads; 0 means width // 64 (DiT's head size)
    mlp_ratio: float = 4.0  # MLP hidden = mlp_ratio * width
    patch_size: int = 4  # pixels per token side; tokens = (image_size / patch_size)^2
    attention: str = "softmax"  # softmax | linear (self-attention cost linear in tokens)
    text_stream: bool = False  # dit: refine the text tokens by their own MLP before each block
    # dit: the mean text token also shifts and scales every block (adaLN, with the time); false:
    # the text reaches the image only through cross-attention, token by token
    pooled_text: bool = True
    # dit: add a fixed sin-cos embedding of each text token's place in the prompt, so that
    # cross-attention can tell "the first noun" from "the second" without the encoder's help
    text_positions: bool = False
    # dit: how the image reads the text tokens: "cross" (cross-attention after self-attention,
    # PixArt-alpha) or "joint" (one self-attention over image and text tokens together, whose
    # MLP refines the text too, as SD3's MMDiT and U-ViT: a word can see the image it shapes)
    text_attention: str = "cross"
    # dit: transformer layers over the text tokens alone (with their places) before any block
    # reads them, so a word can take in the others: "red" can carry "the left one"
    text_layers: int = 0
    unet_channels: str = "32,64,64"  # unet: channels per level; each level after the first halves H, W
    layers_per_block: int = 1  # unet: ResNet blocks per level

    section = "model"
    rules = {
        "backbone": choice(BACKBONE_NAMES), "width": from_to(1, 16384), "depth": from_to(1, 1024),
        "heads": ((lambda v, c: v >= 0 and c.width % (v or max(1, c.width // 64)) == 0),
                  "an integer >= 0 (0: width // 64) that divides model.width"),
        "mlp_ratio": ((lambda v, c: 0 < v <= 64), "a number in (0, 64]"), "patch_size": from_to(1, 256),
        "attention": choice(("linear", "softmax")), "unet_channels": INT_LIST,
        "text_attention": ((lambda v, c: v == "cross" or (v == "joint" and c.attention == "softmax"
                                                         and not c.text_stream)),
                           "'cross', or 'joint' with model.attention=softmax and no model.text_stream"),
        "layers_per_block": at_least(1), "text_layers": from_to(0, 64),
    }

    @property
    def num_heads(self) -> int:
        return self.heads or max(1, self.width // 64)


@dataclass(frozen=True)
class TextConfig(Section):
    """How prompts become tokens: the encoder, what the backbone sees of it, and its noise."""
    # none (unconditional) | onehot (fixed class vector) | learned (trainable class embedding)
    # | minilm (all-MiniLM-L6-v2, offline) | a Hugging Face text encoder by hub id or folder
    # (CLIP text, T5 encoder, BERT-like), frozen. Only pretrained ones take free text.
    encoder: str = "onehot"
    dim: int = 64  # token width of the `learned` encoder (onehot is always num_classes wide)
    max_length: int = 0  # tokens kept per prompt by a pretrained encoder; 0 = what the model allows
    cond_drop: float = 0.1  # per-sample probability of training on the null condition (for CFG)
    noise: float = 0.0  # pretrained encoders, training only: Gaussian noise x RMS on the tokens
    pooling: str = "tokens"  # pretrained: tokens | sentence (1 token: the sentence embedding) | both

    section = "text"
    rules = {"encoder": ((lambda v, c: bool(v.strip())), "none, onehot, learned, minilm, or a hub "
                         "id / folder of a Hugging Face text encoder"),
             "dim": from_to(1, 16384), "max_length": from_to(0, 65536), "cond_drop": between(0, 1),
             "noise": at_least(0, "a number"), "pooling": choice(POOLING_NAMES)}


@dataclass(frozen=True)
class DataConfig(Section):
    """Which images and captions train the model, at what size, and how they are drawn."""
    # fashion-mnist | mnist | cifar10 (class-labelled, captioned from templates) | folder
    # (images + captions.jsonl/.csv in data_dir) | hf (a Hugging Face dataset: hf_name) | emoji
    # | shapes (coloured shapes drawn on the fly, captioned exactly: data/shapes.py)
    dataset: str = "fashion-mnist"
    data_dir: Optional[str] = None  # the dataset's files (folder: the folder); None searches the usual places
    subset: int = 0  # use only the first N training images (0 = all); `overfit` uses a handful
    holdout: int = 0  # the last N of those are kept out of training: validation loss (train.eval_every)
    # labelled datasets: templates (names in a few templates) | bank (+ hundreds per class,
    # Fashion-MNIST) | photo ("a photo of a {name}" only)
    captions: str = "templates"
    template_share: float = 0.0  # with the bank: share of draws from the templates (0: uniform)
    cache_dir: Optional[str] = None  # image/latent caches (`t2i prepare`); None = the user cache dir
    font: Optional[str] = None  # emoji: the Noto Color Emoji font; None searches the usual font paths
    recolour: bool = False  # emoji: add each coloured emoji in the hue colours it lacks (data/emoji.py)
    # shapes: how many scenes are drawn (~6k/s) from which seed (scene i of a seed is the same
    # everywhere), and which kinds by weight ("position=3,pair=1"; "": data/shapes.py's KINDS)
    scenes: int = 50_000
    scene_seed: int = 0
    scene_mix: str = ""
    # folder / hf / emoji: images are resized (shorter side) and centre-cropped to this square
    image_size: int = 64
    channels: int = 3  # 3 = RGB, 1 = grayscale
    hf_name: str = ""  # hub id or local path, e.g. jackyhate/text-to-image-2M
    hf_config: str = ""  # the dataset's configuration name, if it has several
    hf_split: str = "train"
    streaming: bool = False  # read example by example (for datasets too large to download first)
    image_column: str = ""  # "" = the first of image, img, jpg, png, ... (folder: file, image, ...)
    caption_column: str = ""  # "" = the first of caption, text, prompt, ...; `json.prompt` reaches into a dict

    section = "data"
    rules = {"dataset": choice(DATASET_NAMES), "subset": at_least(0), "holdout": at_least(0),
             "captions": choice(("templates", "bank", "photo")), "template_share": between(0, 1),
             "image_size": from_to(1, 4096), "channels": choice((1, 3)), "scenes": at_least(1),
             "scene_seed": at_least(0),
             "recolour": ((lambda v, c: not v or c.dataset == "emoji"), "only for data.dataset=emoji")}


@dataclass(frozen=True)
class VAEConfig(Section):
    """The latent space, if any: a frozen AutoencoderKL; and our own VAE's training."""
    # Which latent space the DiT works in. Empty: pixel space. Else a folder or hub id of a
    # diffusers AutoencoderKL: ours (`t2i vae train`) or a pretrained one (stabilityai/sd-vae-ft-mse).
    name: str = ""
    scale: float = 0.0  # latent multiplier to unit variance; 0 = the VAE's own scaling_factor
    resolution: int = 0  # images are resized to this side for the VAE (0 = its sample_size), or,
    #                      in pixel space, for the DiT (0 = the dataset's own size)
    # The autoencoder `t2i vae train` builds (ignored when loading one):
    channels: str = "16,32,64"  # block widths; each block after the first halves the resolution
    layers_per_block: int = 1  # ResNet blocks per level; the middle block adds self-attention
    latent_channels: int = 4
    kl_weight: float = 1e-4  # KL (mean per latent element) against MSE (mean per pixel): more KL
    #                          gives a smoother latent space, less gives sharper reconstructions

    section = "vae"
    rules = {"scale": at_least(0, "a number"), "resolution": from_to(0, 4096), "channels": INT_LIST,
             "layers_per_block": at_least(1), "latent_channels": at_least(1),
             "kl_weight": at_least(0, "a number")}

    def resolved_name(self) -> str:
        """`name` as an absolute path if it is a local folder (so a checkpoint or cache made
        from one working directory is valid from any other), else the hub id unchanged."""
        local = Path(self.name).expanduser()
        return str(local.resolve()) if self.name and local.exists() else self.name


@dataclass(frozen=True)
class ObjectiveConfig(Section):
    """What the network predicts, at which times, and (few-step) over which intervals."""
    # flow (velocity target) | x0 (clean image) | xflow (clean image, loss on its velocity: for
    # patches wider than the model) | eps (noise, DDPM) | v (v-prediction); eps and v use the
    # cosine schedule. All are sampled through their exact velocity.
    kind: str = "flow"
    # flow, xflow: how training times t are drawn. logit_normal puts more weight mid-way (SD3).
    t_sampling: str = "logit_normal"  # uniform | logit_normal
    logit_mean: float = 0.0
    logit_std: float = 1.0
    # x0: noise level s ~ Beta(beta_a, beta_b) rescaled to [s_min, s_max]; t = 1 - s.
    beta_a: float = 1.0
    beta_b: float = 2.5
    s_min: float = 0.01
    s_max: float = 0.99
    # Which noise each training image is paired with: independent draws, or the batch's
    # optimal-transport assignment (straighter paths, less ambiguous targets; objectives.py).
    pairing: str = "independent"  # independent | ot
    # Few-step objectives (meanflow | shortcut, fewstep.py): the share of each batch trained on
    # intervals s > t (the rest s = t); the adaptive loss weight power (0 = plain MSE, 1 = every
    # sample about equal, -1 = the method's own: meanflow 1, shortcut 0; docs/studies/few-step.md);
    # the step counts trained for (meanflow: half its intervals; shortcut: exactly these,
    # "" = 1,..,64),
    # drawn uniformly from the list, so a count listed twice is trained twice as often.
    interval_fraction: float = 0.25
    adaptive_p: float = -1.0
    step_grid: str = ""
    # Guidance folded into a few-step target while guidance_start <= t < guidance_end (1 = none;
    # sample those with cfg 1); with train.init, `distill` follows that model's velocity.
    guidance: float = 1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    distill: bool = True
    # Distilling (train.init): N teacher paths run once at the first step; `trajectory_share` of
    # each batch then trains on their steps of the step_grid's samplers (trajectories.py).
    trajectories: int = 0
    trajectory_share: float = 0.25

    section = "objective"
    rules = {"kind": choice(OBJECTIVE_NAMES), "t_sampling": choice(("logit_normal", "uniform")),
             "pairing": choice(PAIRING_NAMES),
             "logit_std": POSITIVE, "beta_a": POSITIVE, "beta_b": POSITIVE,
             "s_min": between(0, 1), "interval_fraction": between(0, 1),
             "adaptive_p": ((lambda v, c: v >= 0 or v == -1), "a number >= 0, or -1 (the method's own)"),
             "step_grid": ((lambda v, c: v == "" or INT_LIST[0](v, c)), "step counts, e.g. 1,2,4, or empty"),
             "guidance": at_least(0, "a number"), "guidance_start": between(0, 1),
             "trajectories": at_least(0), "trajectory_share": between(0, 1),
             "guidance_end": ((lambda v, c: c.guidance_start <= v <= 1),
                              "a number in [objective.guidance_start, 1]"),
             "s_max": ((lambda v, c: c.s_min < v <= 1), "a number in (objective.s_min, 1]")}


@dataclass(frozen=True)
class TrainConfig(Section):
    """The run: budget, batch, optimizer and schedule, EMA, precision, checkpoints, evaluation."""
    steps: int = 4000  # optimizer steps (an upper bound when max_minutes is set)
    max_minutes: float = 0.0  # wall-clock budget in minutes; 0 = none. The LR schedule follows
    #                           whichever budget (steps or minutes) runs out first.
    batch_size: int = 128  # images per micro-batch (per process)
    grad_accum: int = 1  # micro-batches per optimizer step; effective batch = product
    lr: float = 1e-3
    weight_decay: float = 0.01  # AdamW, decoupled
    # constant | cosine (linear warm-up, then cosine to min_lr_ratio) | cosine_restarts
    # (SGDR, Loshchilov & Hutter 2017: `cycles` equal cosine cycles, each restarting at lr)
    schedule: str = "cosine"
    cycles: int = 4  # cosine_restarts only
    warmup_steps: int = 100
    warmup_start: float = 0.0  # LR at the first warm-up step, as a fraction of lr (the
    #                            flow-matching design's recipe starts at 0.1)
    min_lr_ratio: float = 0.1  # final LR as a fraction of lr for the cosine schedule
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (fp16 uses a GradScaler, CUDA only)
    ema_decay: float = 0.999  # EMA target decay; warms up as (1+n)/(10+n) early in training
    compile: bool = False  # torch.compile the model
    # Start from this checkpoint's (EMA) weights (a run or checkpoint directory; fine-tuning and
    # few-step distillation, see objective.distill); the step count and schedule start afresh.
    init: str = ""
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    log_every: int = 25  # steps between TensorBoard scalar writes
    sample_every: int = 500  # steps between EMA sample grids (0 = only at the end)
    ckpt_every: int = 500  # steps between checkpoints (a final one is always written)
    eval_every: int = 0  # steps between quick evaluations (accuracy, FD, precision, recall
    #                      to TensorBoard; Fashion-MNIST only); 0 = never. Not counted as training time.
    eval_n_per_class: int = 10  # images per class for those: small and noisy, but shows the trend
    keep_last: int = 3  # newest checkpoints kept on disk; 0 keeps every one
    keep_every: int = 0  # also keep every checkpoint whose step is a multiple of this (0: none);
    #                      `t2i figures progression` draws from them
    # Steps in a row whose loss or gradient is not finite (skipped, weights untouched) before the
    # run stops as diverged; the last good checkpoint stays `latest`.
    max_bad_steps: int = 3
    wandb: bool = False  # also log to Weights & Biases (pip install wandb); TensorBoard always
    wandb_project: str = "t2i"

    section = "train"
    rules = {
        "steps": at_least(1), "max_minutes": at_least(0, "a number"), "batch_size": at_least(1),
        "grad_accum": at_least(1), "lr": POSITIVE, "weight_decay": at_least(0, "a number"),
        "schedule": choice(SCHEDULE_NAMES), "cycles": at_least(1), "warmup_steps": at_least(0),
        "warmup_start": between(0, 1),
        "min_lr_ratio": between(0, 1), "grad_clip": at_least(0, "a number"),
        "precision": choice(PRECISIONS), "ema_decay": between(0, 1),
        "device": ((lambda v, c: v == "auto" or v.split(":")[0] in ("cpu", "cuda", "mps")),
                   "auto, cpu, cuda[:N] or mps"),
        "log_every": at_least(1), "sample_every": at_least(0), "ckpt_every": at_least(0),
        "eval_every": at_least(0), "eval_n_per_class": at_least(1),
        "keep_last": ((lambda v, c: v >= 0), "an integer >= 0 (0 keeps every checkpoint)"), "max_bad_steps": at_least(0),
        "keep_every": ((lambda v, c: v == 0 or (c.ckpt_every > 0 and v % c.ckpt_every == 0)),
                       "0, or a multiple of train.ckpt_every (checkpoints are written there)"),
    }


@dataclass(frozen=True)
class SampleConfig(Section):
    """How a checkpoint samples by default: sampler, steps, guidance and its interval, grounding."""
    steps: int = 25  # ODE steps (Heun costs two model calls per step)
    cfg: float = 3.0  # classifier-free guidance scale; 1 = no guidance
    # euler | heun (ODE, uniform t) | ddim (ODE) | ddpm (stochastic): cosine grid | fewstep (a
    # meanflow/shortcut model's x_s = x_t + (s - t) u(x_t, t, s): 1 step goes from noise to data)
    sampler: str = "euler"
    # Clamp the predicted clean image to [-1, 1] at every step (pixel space only): DDPM's
    # clip_denoised, which noise-predicting (eps) models need to sample in few steps.
    clip_x0: bool = False
    # Guidance only while cfg_start <= t < cfg_end (t = 0 noise, 1 data), the conditional
    # velocity alone elsewhere: guiding near pure noise collapses a prompt's samples onto one
    # mode (Kynkäänniemi et al. 2024). 0 and 1 guide every step.
    cfg_start: float = 0.0
    cfg_end: float = 1.0
    # The times sampling runs between (0 = pure noise, 1 = data); the objective may start later
    # (eps models). The Fashion-MNIST x0 design steps noise levels 0.99 -> 0.01: t 0.01 -> 0.99.
    t_start: float = 0.0
    t_end: float = 1.0
    # Steps moved toward the noise (SD3's time shift, flow/paths.py shift_time): 1 = the
    # sampler's own grid; 3 puts half of the steps below t = 0.25. For pictures decided early:
    # the layout of shapes on white is readable under much noise, so it is drawn near t = 0.
    shift: float = 1.0
    # Ground each prompt on its `retrieve` nearest training captions (0 = off): condition on the
    # average of their sentence embeddings, weighted by softmax(similarity / retrieve_temperature),
    # instead of the prompt's own (retrieval.py: the prompt is spelled first, and its head phrase
    # counts as much as the whole in the similarity). For a pretrained encoder with
    # text.pooling=sentence on class-labelled data: unseen phrasings then draw what the encoder
    # says they are closest to, not a blend of classes (docs/studies/text.md).
    retrieve: int = 0
    retrieve_temperature: float = 0.05
    # Read the words of a prompt that the training captions never use in a dictionary first
    # (WordNet and t2i's supplement, text/lexicon.py): "a hoodie" is drawn as "a hooded
    # sweatshirt". Where the captions are known (class-labelled data, emoji, shapes) and the text
    # encoder is pretrained; elsewhere prompts are used as typed.
    dictionary: bool = True

    section = "sample"
    rules = {"steps": at_least(1), "cfg": at_least(0, "a number"),
             "sampler": choice(SAMPLER_NAMES), "cfg_start": between(0, 1),
             "cfg_end": ((lambda v, c: c.cfg_start <= v <= 1), "a number in [sample.cfg_start, 1]"),
             "t_start": between(0, 1), "shift": POSITIVE,
             "t_end": ((lambda v, c: c.t_start < v <= 1), "a number in (sample.t_start, 1]"),
             "retrieve": at_least(0), "retrieve_temperature": POSITIVE}
