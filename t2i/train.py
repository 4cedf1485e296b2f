"""The training loop: AdamW, warm-up + cosine (or constant) LR, gradient accumulation and
clipping, autocast, EMA, TensorBoard, periodic EMA sample grids, atomic checkpoints, resume.

Resume continues the same run: the data order (an epoch permutation and a cursor), the global
torch RNG (noise, times, condition dropout) and the optimizer state are all checkpointed, so an
interrupted fp32 run retraces the uninterrupted one exactly.

Under torchrun the loop is data-parallel (DistributedDataParallel). Every rank walks the same
permutation and draws the same random numbers for the whole global batch, then keeps its own
slice: rank r trains on samples [r*B, (r+1)*B) of each global batch of B * world. So N ranks
with batch B compute what one process computes with batch N*B (up to float summation order),
the checkpointed state is the same whatever the world size, and a run resumes on any number of
processes. Only rank 0 logs, samples, evaluates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .checkpoint import (load_config, load_weights, pack_training_state, resolve_checkpoint,
                         restore_training_state, save_checkpoint)
from .config import Config
from .data import EpochSampler, ImageDataset, cache_root, load_dataset, open_latent_cache
from .images import make_grid
from .objectives import build_objective, interpolate
from .pipeline import Pipeline, build_networks
from .runtime import autocast, init_distributed, main_process_first, rank_and_world, resolve_precision
from .text import PretrainedTextEncoder, drop_condition, move
from .vae import load_codec

log = logging.getLogger(__name__)


def lr_factor(cfg, step: int, progress: float) -> float:
    """LR multiplier: linear warm-up over `warmup_steps`, then constant or cosine from 1 to
    `min_lr_ratio` as `progress` goes 0 -> 1."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine_restarts":  # each cycle a full cosine, restarting at lr
        progress = min(progress, 1.0) * cfg.cycles
        progress = 1.0 if progress >= cfg.cycles else progress % 1.0
    elif cfg.schedule != "cosine":
        raise ValueError(f"unknown schedule {cfg.schedule!r}; one of ['constant', 'cosine', "
                         "'cosine_restarts']")
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos


def schedule_progress(cfg, step: int, elapsed: float) -> float:
    """How far a run is through its budget, 0 -> 1: steps, or training minutes when
    `max_minutes` is set, whichever runs out first. The LR schedule follows it."""
    p = step / cfg.steps
    if cfg.max_minutes > 0:
        p = max(p, elapsed / (60 * cfg.max_minutes))
    return p


class BudgetBar:
    """A tqdm bar over a run's budget: training seconds with a time budget, else steps."""

    def __init__(self, cfg, step: int, elapsed: float, enabled: bool = True):
        from tqdm.auto import tqdm

        self.timed = cfg.max_minutes > 0
        self.bar = tqdm(total=round(60 * cfg.max_minutes) if self.timed else cfg.steps,
                        initial=round(elapsed) if self.timed else step,
                        unit="s" if self.timed else "step", disable=not enabled, dynamic_ncols=True)

    def advance(self, elapsed: float) -> None:
        """After one step that brought the training time to `elapsed` seconds."""
        bar = self.bar
        bar.update((min(round(elapsed), bar.total) - bar.n) if self.timed else 1)

    def set_postfix(self, **kwargs) -> None:
        self.bar.set_postfix(**kwargs)

    def close(self) -> None:
        self.bar.close()


class Tracker:
    """Where metrics and sample grids go: TensorBoard (`RUN/tb`) always, and Weights & Biases
    too with `train.wandb=true` (optional: `pip install wandb`; nothing else needs it)."""

    def __init__(self, out_dir: Path, config: Config, step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=step or None)
        self.run = None
        if config.train.wandb:
            try:
                import wandb
            except ImportError:
                raise ImportError("train.wandb=true needs wandb: pip install wandb") from None
            # One W&B run per run directory, continued on resume.
            self.run = wandb.init(project=config.train.wandb_project, name=out_dir.name,
                                  id=f"t2i-{out_dir.resolve().name}", resume="allow",
                                  dir=str(out_dir), config=config.to_dict())

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.tb.add_scalar(tag, value, step)
        if self.run is not None:
            self.run.log({tag: value}, step=step)

    def image(self, tag: str, image, step: int) -> None:
        import numpy as np

        self.tb.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")
        if self.run is not None:
            import wandb

            self.run.log({tag: wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.tb.close()
        if self.run is not None:
            self.run.finish()


class Denoiser(nn.Module):
    """The trainable networks as one module whose forward touches every trainable parameter,
    which is what DistributedDataParallel synchronises: text encoding, condition dropout, backbone."""

    def __init__(self, networks: nn.ModuleDict):
        super().__init__()
        self.networks = networks

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text_inputs, drop: torch.Tensor) -> torch.Tensor:
        text = self.networks["text"]
        tokens, mask = text(text_inputs)
        tokens, mask = drop_condition(tokens, mask, *text.null(len(x_t)), drop)
        return self.networks["backbone"](x_t, t, tokens, mask)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    ema_p = [p for p in ema.parameters()]
    model_p = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_p, model_p, 1 - decay)


class Trainer:
    """`Trainer(config, out_dir).train()`; `resume` is a checkpoint, a run dir, or "latest"
    (the latest checkpoint of `out_dir`)."""

    def __init__(self, config: Config, out_dir: str | Path, resume: Optional[str] = None,
                 data: Optional[ImageDataset] = None, progress: bool = True):
        self.out_dir = Path(out_dir)
        self.progress = progress
        ckpt = None
        if resume:
            ckpt = resolve_checkpoint(self.out_dir if resume == "latest" else resume)
            saved = load_config(ckpt)
            if (saved.model, saved.text, saved.data, saved.vae) != (config.model, config.text,
                                                                      config.data, config.vae):
                log.warning("resuming %s: model/text/data/vae come from the checkpoint's config", ckpt)
                config = Config(preset=config.preset, model=saved.model, text=saved.text,
                                data=saved.data, vae=saved.vae, objective=config.objective,
                                train=config.train, sample=config.sample)
        # A local VAE folder is recorded as an absolute path: the checkpoint samples from anywhere.
        config = config.override([f"vae.name={config.vae.resolved_name()}"])
        self.config = config
        tc = config.train
        torch.manual_seed(tc.seed)
        self.device = init_distributed(tc.device)
        self.rank, self.world = rank_and_world()
        self.is_main = self.rank == 0
        self.dtype = resolve_precision(tc.precision, self.device)
        # Pixel space trains on the images; latent space on the memory-mapped latent cache.
        # Caches (a folder's or HF dataset's images, latents, caption embeddings) are built on
        # first use — by rank 0, the other ranks then read them — or ahead with `t2i prepare`.
        self.codec = load_codec(config, self.device)
        if data is None:
            bar = progress and self.is_main
            with main_process_first():
                data = (open_latent_cache(config, self.codec, progress=bar) if config.vae.name
                        else load_dataset(config.data, "train", bar))
        self.data = data
        self.networks = build_networks(config, self.codec.latent_shape).to(self.device)
        text = self.networks["text"]
        if isinstance(text, PretrainedTextEncoder) and self.data.classes is not None:
            # A labelled dataset's captions are a small finite set: encode them once.
            with main_process_first():
                self.text_cache = text.precompute(self.data.classes.all_captions(),
                                                  cache=cache_root(config.data) / "text")
        self.ema = copy.deepcopy(self.networks).requires_grad_(False).eval()
        self.objective = build_objective(config.objective)
        self.optimizer = torch.optim.AdamW(self.networks.parameters(), lr=tc.lr,
                                           weight_decay=tc.weight_decay, betas=(0.9, 0.999))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.model = Denoiser(self.networks)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # A learned null token goes unused in batches without dropped conditions.
            unused = any(p.requires_grad for p in self.networks["text"].parameters())
            self.model = DistributedDataParallel(self.model, find_unused_parameters=unused)
        if tc.compile:
            self.model = torch.compile(self.model)
        self.step, self.elapsed = 0, 0.0
        self.saved_step, self.last_checkpoint = -1, None
        self.order = EpochSampler(len(self.data))
        self.reference = None  # the evaluation's reference features, built at the first eval
        if ckpt is not None:
            self._load(ckpt)
        n = self.networks["backbone"].num_params()
        log.info("model: %.2fM parameters, device %s, autocast %s, %d process(es)", n / 1e6,
                 self.device, self.dtype or "off (fp32)", self.world)

    # ------------------------------------------------------------------ state

    def save(self) -> Path:
        state, tensors = pack_training_state(self.optimizer, self.order, self.step, self.elapsed)
        path = save_checkpoint(self.out_dir, self.step, self.config, self.networks.state_dict(),
                               self.ema.state_dict(), tensors, state, self.config.train.keep_last)
        self.saved_step, self.last_checkpoint = self.step, path
        log.info("checkpoint: %s", path)
        return path

    def _load(self, ckpt: Path) -> None:
        self.networks.load_state_dict(load_weights(ckpt, "model"))
        self.ema.load_state_dict(load_weights(ckpt, "ema"))
        self.step, self.elapsed = restore_training_state(ckpt, self.optimizer, self.order)
        log.info("resumed from %s at step %d", ckpt, self.step)

    # ------------------------------------------------------------------ loop

    def loss_on(self, x: torch.Tensor, text_inputs, global_batch: int = 0,
                part: slice = slice(None)) -> torch.Tensor:
        """The objective's loss on one micro-batch, with per-sample condition dropout. The
        random draws are made for the whole `global_batch` and sliced to this rank's `part`
        (see the module doc)."""
        n = global_batch or len(x)
        drop = (torch.rand(n) < self.config.text.cond_drop)[part]
        noise = torch.randn(n, *x.shape[1:], device=x.device)[part]
        t = self.objective.sample_t(n, x.device)[part]
        with autocast(self.device, self.dtype):
            pred = self.model(interpolate(x, noise, t), t, text_inputs, drop.to(x.device))
        return self.objective.loss(pred, x, noise, t)

    def micro_batch(self, idx: torch.Tensor, u: torch.Tensor):
        """The examples `idx` in the backbone's space, on the device, and the frozen text inputs of
        one caption each (chosen by the uniform numbers `u`)."""
        x, _ = self.data.batch(idx)
        if not self.config.vae.name:  # pixel space: the codec may resize (latents come cached)
            x = self.codec.encode(x)
        text_inputs = move(self.networks["text"].tokenize(self.data.captions_of(idx, u)), self.device)
        return x.to(self.device), text_inputs

    def train_step(self) -> dict:
        tc = self.config.train
        for group in self.optimizer.param_groups:
            group["lr"] = tc.lr * lr_factor(tc, self.step, schedule_progress(tc, self.step, self.elapsed))
        total = 0.0
        global_batch = tc.batch_size * self.world
        part = slice(self.rank * tc.batch_size, (self.rank + 1) * tc.batch_size)
        for micro in range(tc.grad_accum):
            idx, u = self.order.next(global_batch)[part], torch.rand(global_batch)[part]
            x, text_inputs = self.micro_batch(idx, u)
            # With DDP, gradients are all-reduced once, on the last micro-batch.
            sync = micro == tc.grad_accum - 1 or self.world == 1
            with contextlib.nullcontext() if sync else self.model.no_sync():
                loss = self.loss_on(x, text_inputs, global_batch, part)
                self.scaler.scale(loss / tc.grad_accum).backward()
            total += loss.item() / tc.grad_accum
        self.scaler.unscale_(self.optimizer)
        params = list(self.networks.parameters())
        norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip if tc.grad_clip > 0 else math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        # EMA warm-up (as in timm/diffusers): early weights are forgotten fast.
        ema_update(self.ema, self.networks, min(tc.ema_decay, (1 + self.step) / (10 + self.step)))
        return {"loss": total, "grad_norm": norm.item(), "lr": self.optimizer.param_groups[0]["lr"]}

    def pipeline(self) -> Pipeline:
        return Pipeline(self.config, self.ema, self.device, self.config.train.precision, self.codec)

    def sample_grid(self, seeds: int = 2):
        """One column per class, one row per seed, from the EMA weights."""
        names = self.data.sample_prompts()
        images = self.pipeline()(names, num_per_prompt=seeds, seed=0)  # (P*S, C, H, W), by prompt
        c, h, w = images.shape[1:]
        by_seed = images.view(len(names), seeds, c, h, w).transpose(0, 1).reshape(-1, c, h, w)
        return make_grid(by_seed, ncol=len(names), scale=2)

    def write_samples(self, writer: Optional[Tracker]) -> Path:
        grid = self.sample_grid()
        path = self.out_dir / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
        if writer is not None:
            writer.image("samples/ema", grid, self.step)
        return path

    def write_eval(self, writer: Tracker) -> dict:
        """A quick evaluation of the EMA weights (see evaluate.py) logged under eval/."""
        from .evaluate import Reference, evaluate_pipeline

        n, pipe = self.config.train.eval_n_per_class, self.pipeline()
        if self.reference is None:
            self.reference = Reference.for_pipeline(pipe, n)
        s = self.config.sample
        report = evaluate_pipeline(pipe, self.reference, n, s.steps, s.cfg, s.sampler)
        for key in ("accuracy", "fd", "precision", "recall"):
            writer.scalar(f"eval/{key}", report[key], self.step)
        log.info("step %d: accuracy %.3f, FD %.2f (real %.2f), precision %.3f, recall %.3f",
                 self.step, report["accuracy"], report["fd"], self.reference.floor["fd"],
                 report["precision"], report["recall"])
        return report

    def _sync(self, value: float, op: str = "broadcast") -> float:
        """With several processes: rank 0's value ("broadcast") or the mean over ranks."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        if op == "broadcast":
            dist.broadcast(t, 0)
        else:
            dist.all_reduce(t)
            t /= self.world
        return t.item()

    def train(self) -> Optional[Path]:
        """Train until `train.steps` or `train.max_minutes`, whichever comes first; returns the
        final checkpoint (on rank 0; None on the other ranks, which write nothing)."""
        tc = self.config.train
        writer = None
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            writer = Tracker(self.out_dir, self.config, self.step)
        images_per_step = tc.batch_size * tc.grad_accum * self.world
        self.networks.train()
        bar = BudgetBar(tc, self.step, self.elapsed, enabled=self.progress and self.is_main)
        # Logged loss and img/s are averages over the steps since the last log line, counting
        # training time only.
        window_seconds, window_images, window_loss, window_steps = 0.0, 0, 0.0, 0
        last = time.perf_counter()
        try:
            while schedule_progress(tc, self.step, self.elapsed) < 1.0:  # steps or minutes
                metrics = self.train_step()
                now = time.perf_counter()
                # Every rank must see the same clock, or they would stop at different steps
                # (and schedule the LR differently): rank 0's is the run's.
                self.elapsed = self._sync(self.elapsed + now - last)
                window_seconds += now - last
                window_images += images_per_step
                window_loss += metrics["loss"]
                window_steps += 1
                if self.step % tc.log_every == 0 or self.step == 1:
                    metrics["loss"] = self._sync(window_loss / window_steps, "mean")
                    metrics["img_per_s"] = window_images / max(window_seconds, 1e-9)
                    window_seconds, window_images, window_loss, window_steps = 0.0, 0, 0.0, 0
                    if writer is not None:
                        for k, v in metrics.items():
                            writer.scalar(f"train/{k}", v, self.step)
                    bar.set_postfix(step=self.step, loss=f"{metrics['loss']:.4f}",
                                    img_s=f"{metrics['img_per_s']:.0f}", lr=f"{metrics['lr']:.1e}")
                bar.advance(self.elapsed)
                if self.is_main:
                    if tc.sample_every and self.step % tc.sample_every == 0:
                        self.write_samples(writer)
                    if tc.eval_every and self.step % tc.eval_every == 0:
                        if self.config.data.dataset == "fashion-mnist":
                            self.write_eval(writer)
                    if tc.ckpt_every and self.step % tc.ckpt_every == 0:
                        self.save()
                last = time.perf_counter()  # time spent on samples/checkpoints is not training
        finally:
            bar.close()
        if not self.is_main:
            return None
        final = self.save() if self.saved_step != self.step else self.last_checkpoint
        log.info("samples: %s", self.write_samples(writer))
        writer.close()
        return final
