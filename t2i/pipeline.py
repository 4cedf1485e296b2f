"""The public inference API: `Pipeline.from_pretrained(dir)(prompts, steps, cfg, seed)`.

A pipeline holds the networks (backbone — a DiT or a U-Net — and text encoder), the objective
that says how to read the backbone's prediction as a velocity, the codec between the
backbone's space and images (pixels, or a VAE's latents) and the sampling defaults of the
config it was trained with.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .checkpoint import CheckpointError, held_parameters, load_config, load_into, resolve_checkpoint
from .codecs import load_codec
from .config import Config
from .data import dataset_info, known_captions
from .flow.fewstep import FEW_STEP
from .flow.objectives import build_objective
from .flow.paths import check_shift
from .flow.samplers import Callback, get_sampler, guidance
from .flow.samplers import clip_x0 as clamp_clean_image  # `clip_x0` is the call's flag
from .models import build_backbone
from .text.captions import Classes
from .text.encoders import PretrainedTextEncoder, build_text_encoder, pad_tokens
from .text.lexicon import Reader
from .text.prompts import clean_prompt
from .text.retrieval import CaptionIndex, closeness, grounding_problem, one_token
from .utils.fsutil import cache_root
from .utils.runtime import autocast, compile_module, resolve_device, resolve_precision


def build_networks(config: Config, shape: tuple[int, int, int], held: Optional[int] = None) -> nn.ModuleDict:
    """The trainable networks of a config whose backbone works on tensors of `shape` (the codec's
    latent shape): `backbone` and `text` (the text encoder's trainable parts, if any, are trained
    and averaged with the backbone). `held`: how many numbers the checkpoint to be loaded holds
    (`checkpoint.held_parameters`); the backbone is then first built on the meta device (no
    memory) and refused if larger, so a config.json that does not describe its weights cannot
    ask for a huge allocation."""
    text = build_text_encoder(config.text, dataset_info(config.data)["classes"])

    def backbone():
        return build_backbone(config.model, shape, text.dim, two_times=config.objective.kind in FEW_STEP)
    if held is not None:
        with torch.device("meta"):
            size = sum(p.numel() for p in backbone().parameters())
        if size > held:
            raise CheckpointError(f"the checkpoint's config describes a backbone of {size:,} parameters, but its "
                                  f"weights hold {held:,} numbers: the config does not belong to them")
    return nn.ModuleDict({"backbone": backbone(), "text": text})


# What a two-time (few-step) backbone has that a one-time checkpoint lacks: the DiT's interval
# embedding, the U-Net's time-condition projection. A flow checkpoint initialises a few-step
# model with these at their (zero) initial values.
NEW_IN_TWO_TIMES = ("h_embed.", "time_embedding.cond_proj.")


class Pipeline:
    """Text to images from a checkpoint: the networks, the codec and the sampling defaults.

    `Pipeline.from_pretrained(dir or shipped name)(prompts, steps, cfg, seed, sampler)` returns
    images in [0, 1]; sample k of each prompt starts from the noise of seed + k, so the same
    seed gives the same images whatever else is in the call. `compile=True` runs the backbone
    through torch.compile: on a CPU the first call compiles for 30-45 s (5-10 s once its kernels
    are cached), then sampling runs ~1.3-1.6x faster, worth it where one process draws many
    images (a demo, a sweep); images then differ from uncompiled ones in the last bits."""
    def __init__(self, config: Config, networks: nn.ModuleDict, device: torch.device | str = "cpu",
                 precision: str = "fp32", codec=None, compile: bool = False):
        self.config = config
        self.device = torch.device(device)
        self.networks = networks.to(self.device).eval()
        self.codec = codec or load_codec(config)
        self.codec.to(self.device)
        self.objective = build_objective(config.objective)
        self.dtype = resolve_precision(precision, self.device)
        backbone = self.networks["backbone"]
        self.backbone = compile_module(backbone, self.device) if compile else backbone
        self._captions: Optional[CaptionIndex] = None
        self._reader: Optional[Reader | bool] = None  # False: this model has none

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", precision: str = "auto",
                        weights: str = "ema", compile: bool = False) -> "Pipeline":
        """Load a checkpoint directory or a run directory (its latest checkpoint). `weights`
        picks the EMA (default: averaged weights sample better) or the raw model; `compile` as
        for the constructor."""
        ckpt = resolve_checkpoint(path)
        config = load_config(ckpt)
        codec = load_codec(config)
        networks = build_networks(config, codec.latent_shape, held_parameters(ckpt, weights))
        load_into(networks, ckpt, weights)  # refuses non-finite weights
        return cls(config, networks, resolve_device(device), precision, codec, compile)

    @property
    def classes(self) -> Optional[Classes]:
        """The classes of a labelled training set (their names make good prompts), else None."""
        return dataset_info(self.config.data)["classes"]

    def default_prompts(self) -> list[str]:
        """The class names of a labelled training set, else the dataset's example prompts (a
        captioned folder has none to offer)."""
        if self.classes is not None:
            return list(self.classes.names)
        examples = dataset_info(self.config.data)["examples"]
        if not examples:
            raise ValueError("this model was trained on free-form captions, not classes: "
                             "give the prompts (--prompt TEXT)")
        return examples

    def caption_index(self) -> CaptionIndex:
        """The training captions with their sentence embeddings (embedded on first use, cached
        on disk): for grounding (`retrieve`) and `t2i sample --explain`."""
        if self._captions is None:
            self._captions = CaptionIndex(self.networks["text"], self.classes,
                                          cache_root(self.config.data) / "text", self.reader())
        return self._captions

    def reader(self) -> Optional[Reader]:
        """How this model reads the words its training captions never use (text/lexicon.py), or
        None where its captions are not known (a captioned folder) or its encoder is not
        pretrained. The caption index (grounding) reads with this one."""
        if self._reader is None:
            text, known = self.networks["text"], None
            if isinstance(text, PretrainedTextEncoder):
                known = known_captions(self.config.data)
            self._reader = Reader(*known, one_token(text.tokenizer), closeness(text)) if known else False
        return self._reader or None

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from states of the backbone's space (for progressive views: the
        sampler callback's `x1` decodes to the image predicted so far)."""
        return ((self.codec.decode(x).float().cpu() + 1) / 2).clamp(0, 1)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                 mask: torch.Tensor, s: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The velocity at (x, t); a few-step model's average velocity from t to `s` if given."""
        with autocast(self.device, self.dtype):
            pred = self.backbone(x, t, tokens, mask, s)
        return self.objective.to_velocity(pred.float(), x, t)

    def noise(self, n: int, seed: int) -> torch.Tensor:
        """Starting noise for samples 0..n-1: sample k comes from seed + k, so an image does not
        change when other prompts or more samples are asked for in the same call."""
        shape = self.codec.latent_shape
        return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed + k))
                            for k in range(n)])

    def sampling(self, steps: Optional[int] = None, cfg: Optional[float] = None,
                 sampler: Optional[str] = None, clip_x0: Optional[bool] = None,
                 cfg_interval: Optional[tuple[float, float]] = None,
                 retrieve: Optional[int] = None, dictionary: Optional[bool] = None,
                 shift: Optional[float] = None) -> dict:
        """The sampling settings a call would use, checked (the guidance interval is checked by
        `guidance`): each None is the checkpoint's own `sample` config. Reports record this, so
        they say how their images were made."""
        s = self.config.sample
        out = dict(steps=s.steps if steps is None else steps, cfg=s.cfg if cfg is None else cfg,
                   sampler=sampler or s.sampler, clip_x0=s.clip_x0 if clip_x0 is None else clip_x0,
                   cfg_interval=(s.cfg_start, s.cfg_end) if cfg_interval is None
                   else tuple(float(v) for v in cfg_interval),
                   retrieve=s.retrieve if retrieve is None else retrieve,
                   dictionary=s.dictionary if dictionary is None else bool(dictionary),
                   shift=s.shift if shift is None else float(shift))
        if not isinstance(out["steps"], int) or out["steps"] < 1:
            raise ValueError(f"steps must be an integer >= 1, got {out['steps']!r}")
        check_shift(out["shift"])
        if not math.isfinite(out["cfg"]) or out["cfg"] < 0:
            raise ValueError(f"the guidance scale must be a finite number >= 0, got {out['cfg']!r}")
        if out["clip_x0"] and self.config.latent:
            raise ValueError("clip_x0 clips to the pixel range [-1, 1]; latents have none")
        if not isinstance(out["retrieve"], int) or out["retrieve"] < 0:
            raise ValueError(f"retrieve must be an integer >= 0, got {out['retrieve']!r}")
        if out["retrieve"] and (problem := grounding_problem(self.networks["text"], self.classes)):
            raise ValueError(f"retrieve (grounding prompts on the training captions) needs {problem}")
        get_sampler(out["sampler"])  # an unknown name fails here
        if out["sampler"] == "fewstep" and not self.objective.few_step:
            raise ValueError("the fewstep sampler needs a model trained with a few-step objective "
                             f"(objective.kind=meanflow or shortcut); this one is "
                             f"{self.config.objective.kind!r}: use euler, heun, ddim or ddpm")
        return out

    @torch.no_grad()
    def __call__(self, prompts: list[str], steps: Optional[int] = None, cfg: Optional[float] = None,
                 seed: int = 0, sampler: Optional[str] = None, num_per_prompt: int = 1,
                 callback: Optional[Callback] = None, clip_x0: Optional[bool] = None,
                 cfg_interval: Optional[tuple[float, float]] = None,
                 retrieve: Optional[int] = None, dictionary: Optional[bool] = None,
                 shift: Optional[float] = None) -> torch.Tensor:
        """Images for each prompt, [len(prompts) * num_per_prompt, C, H, W] in [0, 1], grouped by
        prompt. Defaults for steps, cfg, sampler, clip_x0 (clamp the predicted clean image to
        [-1, 1] each step; pixel space only), cfg_interval (the times (start, end) at which
        guidance applies), retrieve (ground each prompt on that many nearest training captions;
        0 = off), dictionary (read words the captions never use in WordNet first) and shift
        (steps moved toward the noise, 1 = none) come from the checkpoint's config (`sampling`). The callback sees
        the states in the backbone's space (pixels in [-1, 1], or latents): pass them to `decode`
        to see them as images. Prompts pass `text.prompts.clean_prompt` first (bounded length,
        no control or bidi characters)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = [clean_prompt(p) for p in prompts]
        s = self.sampling(steps, cfg, sampler, clip_x0, cfg_interval, retrieve, dictionary, shift)
        if num_per_prompt < 1:
            raise ValueError(f"num_per_prompt must be >= 1, got {num_per_prompt}")
        if not prompts:
            raise ValueError("no prompts given")
        cond, null = self.condition(list(prompts), num_per_prompt, pad=s["cfg"] != 1.0,
                                    retrieve=s["retrieve"], dictionary=s["dictionary"])
        x = self.noise(num_per_prompt, seed).repeat(len(prompts), 1, 1, 1).to(self.device)
        velocity = guidance(self.velocity, cond, null, s["cfg"], s["cfg_interval"])
        if s["clip_x0"]:
            velocity = clamp_clean_image(velocity)
        x = get_sampler(s["sampler"])(velocity, x, s["steps"], callback,
                                      t_start=max(self.objective.t_start, self.config.sample.t_start),
                                      t_end=self.config.sample.t_end, shift=s["shift"],
                                      generator=torch.Generator().manual_seed(seed))
        return self.decode(x)

    def condition(self, prompts: list[str], num_per_prompt: int = 1, pad: bool = True, retrieve: int = 0,
                  dictionary: bool = False):
        """The text condition of each image and the null condition beside it, both
        (tokens [B, L, D], mask [B, L]) on the device; `pad`: padded with masked tokens to one
        length, so guidance can run them as one batch (unguided sampling needs no null);
        `retrieve`: each prompt grounded on its nearest training captions (retrieval.py);
        `dictionary`: its unknown words read in the dictionary first (lexicon.py)."""
        text = self.networks["text"]
        if retrieve:
            tokens, mask = self.caption_index().ground(prompts, retrieve, self.config.sample.retrieve_temperature,
                                                       dictionary)
        else:
            if dictionary and (reader := self.reader()):
                prompts = [reader(p)[0] for p in prompts]
            tokens, mask = text.encode(prompts)
        tokens = tokens.repeat_interleave(num_per_prompt, 0).to(self.device)
        mask = mask.repeat_interleave(num_per_prompt, 0).to(self.device)
        null_tokens, null_mask = (v.to(self.device) for v in text.null(len(tokens)))
        if not pad:
            return (tokens, mask), (null_tokens, null_mask)
        length = max(tokens.shape[1], null_tokens.shape[1])
        return pad_tokens(tokens, mask, length), pad_tokens(null_tokens, null_mask, length)
