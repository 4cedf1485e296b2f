"""Benchmarking, kept apart from training and evaluation: training and sampling throughput,
model FLOP utilisation (MFU) and peak memory, through the trainer's and the pipeline's public
calls; and the batch finder (the largest batch that fits, the one with the best img/s)."""

from __future__ import annotations

import dataclasses
import logging
import re
import resource
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import Config
from ..sections import SampleConfig
from ..utils.runtime import matmul_flops
from .trainer import Trainer

REFERENCE = SampleConfig()  # Euler 25 steps, CFG 3 at every step: the sampling default
log = logging.getLogger(__name__)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or (Linux) the process's peak RSS."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        except OSError:
            pass  # the peak then covers the whole process so far: an upper bound


def peak_memory_mib(device: torch.device) -> float:
    """MiB at the peak since `reset_peak_memory`: CUDA max allocated, or the CPU peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def available_memory_mib(device: torch.device) -> float:
    """What a batch may use: the GPU's free memory, or the RAM Linux says is available."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    text = Path("/proc/meminfo").read_text()
    return int(re.search(r"MemAvailable:\s+(\d+)", text).group(1)) / 1024


def step_seconds(trainer: Trainer, steps: int) -> float:
    """Seconds per training step, the mean of `steps` (on CUDA, the last step's EMA update
    finished before the clock stops)."""
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    return (time.perf_counter() - start) / steps


def time_steps(trainer: Trainer, steps: int, warmup: int) -> tuple[float, float]:
    """(img/s, peak MiB) of `steps` training steps after `warmup` untimed ones."""
    reset_peak_memory(trainer.device)
    for _ in range(warmup):
        trainer.train_step()
    tc = trainer.config.train
    return tc.batch_size * tc.grad_accum / step_seconds(trainer, steps), peak_memory_mib(trainer.device)


def count_flops(fn) -> int:
    """FLOPs of the torch operations `fn()` runs, counted by torch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def benchmark(config: Config, train_steps: int = 30, sample_images: int = 100,
              warmup: int = 3) -> dict:
    """Training and sampling throughput, with model FLOPs counted by torch's FlopCounterMode and
    compared with the best matmul peak (fp32 or bf16) measured here and now on the run's device:
    MFU is the fraction of what this device could do at its fastest precision, whatever
    precision the run used. `train.compile` compiles the sampling pipeline too (`--compile` of
    `t2i sample` and `t2i eval`), its FLOPs counted uncompiled."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, tmp, progress=False)
    device_peaks = {name: matmul_flops(dtype, trainer.device)
                    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    tc = config.train
    train_ips, train_peak = time_steps(trainer, train_steps, warmup)
    train_flops = count_flops(trainer.forward_backward) / tc.batch_size

    pipe = trainer.pipeline(compile=tc.compile)
    names = trainer.data.sample_prompts()
    per_prompt = max(1, sample_images // len(names))
    sample_ips = sampling_speed(pipe, names, per_prompt)
    # The flow default beside it, in the same run: what a few-step model saves.
    reference = dict(steps=REFERENCE.steps, cfg=REFERENCE.cfg, sampler=REFERENCE.sampler,
                     cfg_interval=(REFERENCE.cfg_start, REFERENCE.cfg_end))
    reference_ips = sampling_speed(pipe, names, per_prompt, **reference)
    sample_flops = count_flops(lambda: trainer.pipeline()(names[:1], num_per_prompt=1))
    precision = "bf16" if trainer.dtype == torch.bfloat16 else "fp32"
    peak = max(device_peaks.values())
    return {
        "preset": config.preset,
        "params_M": trainer.num_params / 1e6,
        "precision": precision,
        "precision_decision": trainer.precision_note,
        "peak_fp32_GFLOPs": device_peaks["fp32"] / 1e9,
        "peak_bf16_GFLOPs": device_peaks["bf16"] / 1e9,
        "train_img_per_s": train_ips,
        "train_GFLOP_per_img": train_flops / 1e9,
        "train_MFU": train_ips * train_flops / peak,
        "train_peak_memory_MiB": train_peak,
        "memory_measure": "CUDA max allocated" if trainer.device.type == "cuda" else "CPU peak RSS",
        "sample_steps": config.sample.steps,
        "sample_cfg": config.sample.cfg,
        "sample_img_per_s": sample_ips,
        "sample_GFLOP_per_img": sample_flops / 1e9,
        "sample_MFU": sample_ips * sample_flops / peak,
        "reference_sampling": f"{REFERENCE.sampler} {REFERENCE.steps}, CFG {REFERENCE.cfg:g}",
        "reference_sample_img_per_s": reference_ips,
        "sample_speedup": sample_ips / reference_ips,
    }


def sampling_speed(pipe, prompts: list[str], per_prompt: int, **sampling) -> float:
    """Images per second of `pipe(prompts, num_per_prompt=per_prompt, **sampling)`, after the
    same call untimed (a compiled pipeline compiles for the batch sizes the call uses)."""
    pipe(prompts, num_per_prompt=per_prompt, **sampling)
    start = time.perf_counter()
    pipe(prompts, num_per_prompt=per_prompt, **sampling)
    return per_prompt * len(prompts) / (time.perf_counter() - start)


def find_batch(config: Config, budget_mib: float = 0.0, max_batch: int = 1024, steps: int = 5,
               warmup: int = 2, start: int = 8) -> dict:
    """Train a few steps at batch sizes start, 2 x start, ... and report each one's img/s and
    peak memory: the largest batch that fits `budget_mib` (0: the peak so far plus 90% of the
    memory available) and the one with the best img/s. Doubling stops before a batch whose
    peak, extrapolated from the last two, would pass the budget (a CPU run past the RAM is
    killed, not refused), at a CUDA out-of-memory error, or at `max_batch`."""
    rows, batch, budget = [], start, budget_mib
    while batch <= max_batch:
        if len(rows) >= 2 and 2 * rows[-1]["peak_MiB"] - rows[-2]["peak_MiB"] > budget:
            break  # the next doubling would pass the budget
        cfg = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=batch))
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, tmp, progress=False)
        device = trainer.device
        budget = budget or peak_memory_mib(device) + 0.9 * available_memory_mib(device)
        try:
            ips, peak = time_steps(trainer, steps, warmup)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            del trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if peak > budget:
            break
        rows.append({"batch_size": batch, "img_per_s": ips, "peak_MiB": peak})
        log.info("batch %d: %.1f img/s, peak %.0f MiB", batch, ips, peak)
        batch *= 2
    if not rows:
        raise ValueError(f"not even batch {start} fits {budget:.0f} MiB")
    return {"rows": rows, "budget_MiB": budget, "largest": rows[-1]["batch_size"],
            "fastest": max(rows, key=lambda r: r["img_per_s"])["batch_size"]}
