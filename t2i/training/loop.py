"""The one training loop, shared by the denoiser trainer (train.py) and the VAE trainer
(vae_train.py): the budget (steps or training minutes), the LR schedule, the optimizer step
(gradient scaling and clipping), the progress bar, logging (TensorBoard, optionally W&B), the
checkpoint cadence, saving and resuming.

A trainer subclasses `TrainingLoop`, builds its networks, then calls `init_loop(module, n)`,
and supplies `train_step()` (one optimizer step, returning scalar metrics), `weights()` and
`load_weights(ckpt)`; `periodic(tracker)` and `finish(tracker, checkpoint)` are its hooks.

Nothing is lost or silent: a step whose loss or gradient is not finite is skipped (the weights
stay as they were) and `train.max_bad_steps` of them in a row stop the run with `Diverged`; a
checkpoint is never written with non-finite weights. SIGINT or SIGTERM lets the current step
finish (samples, evaluations and a teacher's paths under way stop at once), writes a checkpoint
and raises `Interrupted` (a second signal aborts at once); under torchrun every rank stops at
the same step. Saves killed half-way are cleared at the next start.
One run writes a run directory at a time (`utils.fsutil.Lock`); a full disk while saving is one
clear error, the last good checkpoint untouched.

Resume continues the same run: the data order (an epoch permutation and a cursor), the global
torch RNG and the optimizer state are checkpointed with the weights, so an interrupted fp32 run
retraces the uninterrupted one exactly. Time spent on samples, evaluations and checkpoints is not
training time: neither the budget nor img/s counts it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import time
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from ..checkpoint import (
    pack_training_state,
    remove_stale_parts,
    resolve_checkpoint,
    restore_training_state,
    save_checkpoint,
)
from ..data import EpochSampler
from ..utils.fsutil import Lock, cache_dir, no_space
from ..utils.runtime import await_release, choose_precision, resolve_precision
from .progress import BudgetBar, Tracker
from .signals import Stopping, StopNow

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine", "cosine_restarts")


class Diverged(RuntimeError):
    """The loss or the gradients stopped being finite; nothing non-finite was saved."""


class Interrupted(Exception):
    """SIGINT / SIGTERM stopped training after a step; `checkpoint` holds it (rank 0)."""

    def __init__(self, signum: int, step: int, checkpoint: Optional[Path]):
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


def lr_factor(cfg, step: int, progress: float) -> float:
    """LR multiplier: linear warm-up from `warmup_start` over `warmup_steps`, then constant or
    cosine from 1 to `min_lr_ratio` as `progress` goes 0 -> 1."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.warmup_start + (1 - cfg.warmup_start) * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine_restarts":  # each cycle a full cosine, restarting at lr
        progress = min(progress, 1.0) * cfg.cycles
        progress = 1.0 if progress >= cfg.cycles else progress % 1.0
    elif cfg.schedule != "cosine":
        raise ValueError(f"unknown schedule {cfg.schedule!r}; one of {list(SCHEDULES)}")
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos


def schedule_progress(cfg, step: int, elapsed: float) -> float:
    """How far a run is through its budget, 0 -> 1: steps, or training minutes when
    `max_minutes` is set, whichever runs out first. The LR schedule follows it."""
    p = step / cfg.steps
    if cfg.max_minutes > 0:
        p = max(p, elapsed / (60 * cfg.max_minutes))
    return p


def resume_checkpoint(out_dir: Path, resume: Optional[str]) -> Optional[Path]:
    """The checkpoint `resume` names: "latest" (the newest of `out_dir`), a checkpoint or run
    directory, or None for a fresh run."""
    if not resume:
        return None
    return resolve_checkpoint(out_dir if resume == "latest" else resume)


class TrainingLoop(Stopping):
    """The loop every trainer runs (see the module doc). A subclass sets `config`, `out_dir`,
    `progress`, `device`, `rank`, `world` and `is_main` before calling `init_loop`, which
    decides `dtype` (autocast, None = fp32)."""

    log_prefix = "train"  # TensorBoard tags: f"{log_prefix}/{metric}"
    averaged = ("loss",)  # metrics averaged over the steps between log lines (others: last value)

    def init_loop(self, module: torch.nn.Module, num_examples: int) -> None:
        """The optimizer over the parameters of `module` (what is trained), the data order over
        `num_examples` and a fresh step count (`resume` then loads a checkpoint over them)."""
        tc = self.config.train
        self.trained = module
        self.parameters = list(module.parameters())
        # The fused kernel updates every tensor in one pass: on a CPU a third of the optimizer
        # step's time (a 5M-parameter DiT: 15 ms -> 5 ms of a 250 ms step).
        fused = (self.device.type in ("cpu", "cuda", "mps")
                 and all(p.is_floating_point() for p in self.parameters))
        self.optimizer = torch.optim.AdamW(self.parameters, lr=tc.lr, weight_decay=tc.weight_decay,
                                           betas=(0.9, 0.999), fused=fused)
        self.order = EpochSampler(num_examples)
        self.dtype = None  # fp32 while the choice is measured
        self.dtype, self.precision_note = self._choose_precision()
        # fp16 needs its gradients scaled against underflow; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.step, self.elapsed = 0, 0.0
        self.saved_step, self.last_checkpoint = -1, None
        self.bad_steps = 0  # steps in a row with a non-finite loss or gradient
        self.signum = 0  # the signal that asked training to stop, if any
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise NotADirectoryError(f"{self.out_dir} exists and is not a folder: choose another --out")
        if self.is_main:  # refuse now, before the set-up, if another run writes there
            Lock(self.out_dir, what="run directory").release()

    # ------------------------------------------------------------------ subclass interface

    def train_step(self) -> dict:
        """One optimizer step (`set_lr`, the micro-batches, `optimizer_step`); scalar metrics."""
        raise NotImplementedError

    def forward_backward(self) -> float:
        """One micro-batch's forward and backward pass, gradients dropped after: what a step
        costs, for `t2i bench` and the precision choice. Returns the loss."""
        raise NotImplementedError

    def weights(self) -> tuple[dict, dict]:
        """The (model, EMA) state dicts a checkpoint stores."""
        raise NotImplementedError

    def load_weights(self, ckpt: Path) -> None:
        raise NotImplementedError

    def before_run(self) -> None:
        """Before the first step of this process's run: work that may take long (a teacher's
        paths), interruptible in one process."""

    def periodic(self, tracker: Tracker) -> None:
        """After each step on rank 0: samples, evaluations (checkpoints are the loop's).
        Interruptible: a signal stops it at once."""

    def finish(self, tracker: Tracker, checkpoint: Path):
        """After the last step on rank 0, with the final checkpoint; returns what `train` does."""
        return checkpoint

    def postfix(self, metrics: dict) -> dict:
        """What the progress bar shows of a log step's metrics."""
        return {"step": self.step, "loss": f"{metrics['loss']:.4f}",
                "img_s": f"{metrics['img_per_s']:.0f}", "lr": f"{metrics['lr']:.1e}"}

    # ------------------------------------------------------------------ precision

    def _choose_precision(self) -> tuple[Optional[torch.dtype], str]:
        """`train.precision`, with `auto` decided by timing this run's own step (runtime.py);
        under torchrun rank 0's choice (by matmul speed alone: ranks must not time steps apart,
        the backward pass synchronises them) is every rank's."""
        tc = self.config.train
        if self.world > 1:
            dtype = resolve_precision(tc.precision, self.device)
            if tc.precision == "auto" and self.device.type == "cpu":  # a measurement: rank 0's
                dtype = torch.bfloat16 if self._sync(float(dtype == torch.bfloat16)) else None
            return dtype, f"{tc.precision}: {'fp32' if dtype is None else str(dtype)[6:]} (rank 0's choice)"
        key = {"trainer": type(self).__name__, "batch": tc.batch_size, "compile": tc.compile,
               "model": dataclasses.asdict(self.config.model), "vae": dataclasses.asdict(self.config.vae),
               "data": [self.config.data.dataset, self.config.data.image_size, self.config.data.channels]}
        return choose_precision(tc.precision, self.device, self._time_step, key,
                                cache_dir() / "precision.json")

    def _time_step(self, dtype: Optional[torch.dtype]) -> float:
        """Seconds for one micro-batch in `dtype`, leaving the run exactly as it was (RNG and
        data order restored, no weight changed)."""
        rng, perm, cursor, kept = torch.get_rng_state(), self.order.perm, self.order.cursor, self.dtype
        self.dtype = dtype
        try:
            start = time.perf_counter()
            self.forward_backward()
            return time.perf_counter() - start
        finally:
            self.dtype = kept
            torch.set_rng_state(rng)
            self.order.load(perm, cursor)

    # ------------------------------------------------------------------ one step

    def set_lr(self) -> None:
        """The scheduled LR of this step, from the budget used so far."""
        tc = self.config.train
        factor = lr_factor(tc, self.step, schedule_progress(tc, self.step, self.elapsed))
        for group in self.optimizer.param_groups:
            group["lr"] = tc.lr * factor

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate one micro-batch's loss, its share of the accumulated step."""
        self.scaler.scale(loss / self.config.train.grad_accum).backward()

    def optimizer_step(self, loss: float) -> dict:
        """Unscale, clip, step and clear the gradients; the step count moves on. A step whose
        `loss` or gradient norm is not finite leaves the weights as they were (see the module
        doc). Returns the gradient norm (before clipping) and the LR."""
        tc = self.config.train
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.parameters, tc.grad_clip if tc.grad_clip > 0 else math.inf)
        # fp16's GradScaler skips overflowing steps itself (and lowers its scale): not divergence.
        bad = not math.isfinite(loss) or (not self.scaler.is_enabled() and not torch.isfinite(norm))
        if self._sync(float(bad), "max"):  # every rank skips, or none: their weights stay equal
            self.bad_steps += 1
            if self.bad_steps > tc.max_bad_steps:
                raise Diverged(f"loss {loss:.4g}, gradient norm {norm.item():.4g} at step {self.step}: "
                               f"not finite for {self.bad_steps} steps in a row; the last good "
                               f"checkpoint is {self.last_checkpoint or 'none (nothing saved)'}. "
                               "Lower train.lr, or raise train.warmup_steps or train.grad_clip")
            log.warning("step %d: loss %.4g, gradient norm %.4g; step skipped", self.step, loss,
                        norm.item())
        else:
            self.bad_steps = 0
            self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"grad_norm": norm.item(), "lr": self.optimizer.param_groups[0]["lr"]}

    # ------------------------------------------------------------------ state

    def save(self) -> Path:
        model, ema = self.weights()
        bad = [k for k, v in (*model.items(), *ema.items())
               if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise Diverged(f"step {self.step}: non-finite weights ({', '.join(bad[:3])}); not "
                           f"saved, the last good checkpoint is {self.last_checkpoint or 'none'}. "
                           "Lower train.lr, or raise train.warmup_steps or train.grad_clip")
        state, tensors = pack_training_state(self.optimizer, self.order, self.step, self.elapsed,
                                            self.precision_note)
        try:
            path = save_checkpoint(self.out_dir, self.step, self.config, model, ema, tensors, state,
                                   self.config.train.keep_last, self.config.train.keep_every)
        except OSError as e:
            raise no_space(e, f"the checkpoint of step {self.step} in {self.out_dir}",
                           f"; the last good checkpoint is {self.last_checkpoint or 'none'}") from None
        self.saved_step, self.last_checkpoint = self.step, path
        log.info("checkpoint: %s", path)
        return path

    def resume(self, ckpt: Path) -> None:
        self.load_weights(ckpt)
        self.step, self.elapsed = restore_training_state(ckpt, self.optimizer, self.order)
        log.info("resumed from %s at step %d", ckpt, self.step)

    def _sync(self, value: float, op: str = "broadcast") -> float:
        """With several processes: rank 0's value ("broadcast"), the mean ("mean") or the
        largest ("max") over ranks."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        if op == "broadcast":
            dist.broadcast(t, 0)
        elif op == "max":
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        else:
            dist.all_reduce(t)
            t /= self.world
        await_release(t)
        return t.item()

    # ------------------------------------------------------------------ the loop

    def train(self):
        """Train until `train.steps` or `train.max_minutes`, whichever comes first; then, on
        rank 0, write the final checkpoint and return what `finish` makes of it (None on the
        other ranks, which write nothing). Raises `Interrupted` after a signal (with the
        checkpoint written) and `Diverged` (with nothing written)."""
        tracker = lock = None
        if self.is_main:
            lock = Lock(self.out_dir, what="run directory")  # one writer per run directory
            remove_stale_parts(self.out_dir)
            tracker = Tracker(self.out_dir, self.config, self.step)
        try:
            with self.stop_on_signals():
                self.run(tracker)
                final = None
                if self.is_main:
                    final = self.save() if self.saved_step != self.step else self.last_checkpoint
                if self.signum:
                    raise Interrupted(self.signum, self.step, final)
                try:
                    with self.interruptible():
                        return self.finish(tracker, final) if self.is_main else None
                except StopNow:
                    raise Interrupted(self.signum, self.step, final) from None
        finally:
            if tracker is not None:
                tracker.close()
                lock.release()

    def run(self, tracker: Optional[Tracker]) -> None:
        tc = self.config.train
        images_per_step = tc.batch_size * tc.grad_accum * self.world
        self.trained.train()
        bar = BudgetBar(tc, self.step, self.elapsed, enabled=self.progress and self.is_main)
        # Logged img/s and the `averaged` metrics cover the steps since the last log line,
        # counting training time only.
        window_seconds, window_steps, sums = 0.0, 0, dict.fromkeys(self.averaged, 0.0)
        try:
            try:
                with self.interruptible(alone=True):
                    self.before_run()
            except StopNow:
                return
            last = time.perf_counter()
            while schedule_progress(tc, self.step, self.elapsed) < 1.0:  # steps or minutes
                metrics = self.train_step()
                now = time.perf_counter()
                # Every rank must see the same clock, or they would stop at different steps
                # (and schedule the LR differently): rank 0's is the run's.
                self.elapsed = self._sync(self.elapsed + now - last)
                window_seconds += now - last
                window_steps += 1
                for k in sums:
                    sums[k] += metrics[k]
                if self.step % tc.log_every == 0 or self.step == 1:
                    for k in sums:
                        metrics[k] = self._sync(sums[k] / window_steps, "mean")
                    metrics["img_per_s"] = window_steps * images_per_step / max(window_seconds, 1e-9)
                    window_seconds, window_steps, sums = 0.0, 0, dict.fromkeys(self.averaged, 0.0)
                    if tracker is not None:
                        for k, v in metrics.items():
                            tracker.scalar(f"{self.log_prefix}/{k}", v, self.step)
                    bar.set_postfix(**self.postfix(metrics))
                bar.advance(self.elapsed)
                if self.is_main:
                    try:
                        with self.interruptible():
                            self.periodic(tracker)
                    except StopNow:
                        pass  # signum is set: every rank stops at this step, below
                    if tc.ckpt_every and self.step % tc.ckpt_every == 0:
                        self.save()
                # Any rank's signal stops every rank at this same step.
                self.signum = int(self._sync(float(self.signum), "max"))
                if self.signum:
                    break
                last = time.perf_counter()  # time spent on samples/checkpoints is not training
        finally:
            bar.close()
