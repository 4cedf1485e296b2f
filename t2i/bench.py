"""Benchmarking, kept apart from training and evaluation: training and sampling throughput and
model FLOP utilisation (MFU), through the trainer's and the pipeline's public calls."""

from __future__ import annotations

import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import Config
from .runtime import matmul_flops
from .train import Trainer


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
    pipe(names[:1], num_per_prompt=2)  # warm-up
    start = time.perf_counter()
    pipe(names, num_per_prompt=per_prompt)
    sample_s = time.perf_counter() - start
    sample_ips = per_prompt * len(names) / sample_s
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
    }
