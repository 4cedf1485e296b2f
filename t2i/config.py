"""Typed configuration and named presets.

A run is described by one `Config` made of small dataclasses. Presets are named constructors
in `PRESETS`; command-line overrides such as `model.depth=8` are parsed against the field's
declared type and applied with `dataclasses.replace`, so a typo is an error, never a new field.
The full config travels inside every checkpoint (`config.json`), which is enough to sample.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "dit"  # dit | unet (diffusers UNet2DConditionModel with cross-attention)
    width: int = 256  # transformer width D; cost grows ~D^2 per token (unet: cross-attention width)
    depth: int = 6  # number of blocks; cost grows linearly
    heads: int = 0  # attention heads; 0 means width // 64 (DiT's head size)
    mlp_ratio: float = 4.0  # MLP hidden = mlp_ratio * width
    patch_size: int = 4  # pixels per token side; tokens = (image_size / patch_size)^2
    attention: str = "softmax"  # softmax | linear (self-attention cost linear in tokens)
    unet_channels: str = "32,64,64"  # unet: channels per level; each level after the first halves H, W
    layers_per_block: int = 1  # unet: ResNet blocks per level

    @property
    def num_heads(self) -> int:
        return self.heads or max(1, self.width // 64)


@dataclass(frozen=True)
class TextConfig:
    # none (unconditional) | onehot (fixed class vector) | learned (trainable class embedding)
    # | minilm (all-MiniLM-L6-v2 from the `text` extra, offline) | any Hugging Face text
    # encoder by hub id or local folder (CLIP text, T5 encoder, BERT-like): frozen, its
    # token-level hidden states attended to by the DiT. Class encoders know only class names;
    # pretrained ones take free text.
    encoder: str = "onehot"
    dim: int = 64  # token width of the `learned` encoder (onehot is always num_classes wide)
    max_length: int = 0  # tokens kept per prompt by a pretrained encoder; 0 = what the model allows
    cond_drop: float = 0.1  # per-sample probability of training on the null condition (for CFG)


@dataclass(frozen=True)
class DataConfig:
    # fashion-mnist | mnist | cifar10 (class-labelled, captioned from templates) | folder
    # (images + captions.jsonl/.csv in data_dir) | hf (a Hugging Face dataset: hf_name)
    dataset: str = "fashion-mnist"
    data_dir: Optional[str] = None  # the dataset's files (folder: the folder); None searches the usual places
    subset: int = 0  # use only the first N training images (0 = all); `overfit` uses a handful
    cache_dir: Optional[str] = None  # image/latent caches (`t2i prepare`); None = the user cache dir
    # folder / hf only: images are resized (shorter side) and centre-cropped to this square
    image_size: int = 64
    channels: int = 3  # 3 = RGB, 1 = grayscale
    hf_name: str = ""  # hub id or local path, e.g. jackyhate/text-to-image-2M
    hf_config: str = ""  # the dataset's configuration name, if it has several
    hf_split: str = "train"
    streaming: bool = False  # read example by example (for datasets too large to download first)
    image_column: str = ""  # "" = the first of image, img, jpg, png, ... (folder: file, image, ...)
    caption_column: str = ""  # "" = the first of caption, text, prompt, ...; `json.prompt` reaches into a dict


@dataclass(frozen=True)
class VAEConfig:
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

    def resolved_name(self) -> str:
        """`name` as an absolute path if it is a local folder (so a checkpoint or cache made
        from one working directory is valid from any other), else the hub id unchanged."""
        local = Path(self.name).expanduser()
        return str(local.resolve()) if self.name and local.exists() else self.name


@dataclass(frozen=True)
class ObjectiveConfig:
    # flow (velocity target) | x0 (clean image) | eps (noise, DDPM) | v (v-prediction); eps and v
    # use the cosine schedule. All are sampled through their exact velocity.
    kind: str = "flow"
    # flow: how training times t are drawn. logit_normal puts more weight mid-way (SD3).
    t_sampling: str = "logit_normal"  # uniform | logit_normal
    logit_mean: float = 0.0
    logit_std: float = 1.0
    # x0: noise level s ~ Beta(beta_a, beta_b) rescaled to [s_min, s_max]; t = 1 - s.
    beta_a: float = 1.0
    beta_b: float = 2.5
    s_min: float = 0.01
    s_max: float = 0.99


@dataclass(frozen=True)
class TrainConfig:
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
    min_lr_ratio: float = 0.1  # final LR as a fraction of lr for the cosine schedule
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (fp16 uses a GradScaler, CUDA only)
    ema_decay: float = 0.999  # EMA target decay; warms up as (1+n)/(10+n) early in training
    compile: bool = False  # torch.compile the model
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    log_every: int = 25  # steps between TensorBoard scalar writes
    sample_every: int = 500  # steps between EMA sample grids (0 = only at the end)
    ckpt_every: int = 500  # steps between checkpoints (a final one is always written)
    eval_every: int = 0  # steps between quick evaluations (accuracy, FD, precision, recall
    #                      to TensorBoard; Fashion-MNIST only); 0 = never. Not counted as training time.
    eval_n_per_class: int = 10  # images per class for those: small and noisy, but shows the trend
    keep_last: int = 3  # checkpoints kept on disk
    wandb: bool = False  # also log to Weights & Biases (pip install wandb); TensorBoard always
    wandb_project: str = "t2i"


@dataclass(frozen=True)
class SampleConfig:
    steps: int = 25  # ODE steps (Heun costs two model calls per step)
    cfg: float = 3.0  # classifier-free guidance scale; 1 = no guidance
    sampler: str = "euler"  # euler | heun (ODE, uniform t) | ddim (ODE) | ddpm (stochastic): cosine grid
    # Clamp the predicted clean image to [-1, 1] at every step (pixel space only): DDPM's
    # clip_denoised, which noise-predicting (eps) models need to sample in few steps.
    clip_x0: bool = False


@dataclass(frozen=True)
class Config:
    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    text: TextConfig = field(default_factory=TextConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    @property
    def latent(self) -> bool:
        """Whether the backbone works in a VAE's latent space (else in pixel space)."""
        return bool(self.vae.name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        sections = {}
        for f in dataclasses.fields(cls):
            if f.name == "preset":
                continue
            sub_cls = typing.get_type_hints(cls)[f.name]
            known = {g.name for g in dataclasses.fields(sub_cls)}
            values = d.get(f.name, {})
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown {f.name} fields in config: {sorted(unknown)}")
            sections[f.name] = sub_cls(**values)
        return cls(preset=d.get("preset", "custom"), **sections)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_dict(json.loads(text))

    def override(self, assignments: list[str]) -> "Config":
        """Apply `section.field=value` strings, each parsed to the field's declared type."""
        cfg = self
        for item in assignments:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ValueError(f"override {item!r} must look like section.field=value")
            sections = {f.name for f in dataclasses.fields(cfg)} - {"preset"}
            if section not in sections:
                raise ValueError(f"unknown config section {section!r}; one of {sorted(sections)}")
            sub = getattr(cfg, section)
            hints = typing.get_type_hints(type(sub))
            if name not in hints:
                raise ValueError(f"unknown field {section}.{name}; one of {sorted(hints)}")
            value = _parse(raw.strip(), hints[name], key)
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **{name: value})})
        return cfg


def _parse(raw: str, tp, key: str):
    """Parse `raw` as type `tp` (int, float, bool, str or Optional of those)."""
    if typing.get_origin(tp) is typing.Union:
        if raw.lower() in ("none", "null", ""):
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    try:
        if tp is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if tp is int:
            return int(float(raw)) if "e" in raw.lower() else int(raw)
        return tp(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a valid {tp.__name__}") from None
