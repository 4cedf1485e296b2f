"""Benchmarking, kept apart from training and evaluation: training and sampling throughput and
model FLOP utilisation (MFU), through the trainer's and the pipeline's public calls."""

from __future__ import annotations

import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import Config, SampleConfig
from .runtime import matmul_flops
from .train import Trainer


REFERENCE = SampleConfig()  # Euler 25 steps, CFG 3 at every step: the sampling default


def count_flops(fn) -> int:
    """FLOPs of the torch operations `fn()` runs, counted by torch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def benchmark(config: Config, train_steps: int = 30, sample_images: int = 100,
              warmup: int = 3) -> dict:
    """Training and sampling throughput, with model FLOPs counted by torch's FlopCounterMode and
    compared with the best matmul peak (fp32 or bf16) measured here and now: MFU is the fraction of
    what this device could do at its fastest precision, whatever precision the run used."""
    device_peaks = {"fp32": matmul_flops(torch.float32), "bf16": matmul_flops(torch.bfloat16)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, tmp, progress=False)
    tc = config.train
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(train_steps):
        trainer.train_step()
    train_s = time.perf_counter() - start
    images = train_steps * tc.batch_size * tc.grad_accum
    train_ips = images / train_s

    train_flops = count_flops(trainer.forward_backward) / tc.batch_size

    pipe = trainer.pipeline()
    names = trainer.data.sample_prompts()
    per_prompt = max(1, sample_images // len(names))
    sample_ips = sampling_speed(pipe, names, per_prompt)
    # The flow default beside it, in the same run: what a few-step model saves.
    reference = dict(steps=REFERENCE.steps, cfg=REFERENCE.cfg, sampler=REFERENCE.sampler,
                     cfg_interval=(REFERENCE.cfg_start, REFERENCE.cfg_end))
    reference_ips = sampling_speed(pipe, names, per_prompt, **reference)
    sample_flops = count_flops(lambda: pipe(names[:1], num_per_prompt=1))
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
    """Images per second of `pipe(prompts, num_per_prompt=per_prompt, **sampling)`, after a
    warm-up call."""
    pipe(prompts[:1], num_per_prompt=2, **sampling)
    start = time.perf_counter()
    pipe(prompts, num_per_prompt=per_prompt, **sampling)
    return per_prompt * len(prompts) / (time.perf_counter() - start)
