"""Device and numeric precision: one place decides where and in what precision we compute."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; an explicit device that is not there
    is an error (silently training on the CPU instead would be a surprise)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; one of auto, cpu, cuda[:N], mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device; use auto or cpu")
    if kind == "mps" and not _mps_available():
        raise ValueError("device 'mps' requested but this torch has no MPS (Apple GPU) backend; "
                         "use auto or cpu")
    return torch.device(name)


def init_distributed(device_name: str = "auto") -> torch.device:
    """This process's device. Under torchrun (WORLD_SIZE > 1) it also joins the process group —
    NCCL on GPUs, gloo on CPUs — and takes GPU LOCAL_RANK. A plain `t2i train` never starts a
    process group."""
    device = resolve_device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def rank_and_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def main_process_first():
    """Rank 0 runs the block first (e.g. building a cache), the other ranks after it is done."""
    rank, world = rank_and_world()
    if world > 1 and rank != 0:
        dist.barrier()
    yield
    if world > 1 and rank == 0:
        dist.barrier()


def matmul_flops(dtype: torch.dtype, device: torch.device | str = "cpu", n: int = 1024,
                 seconds: float = 0.3) -> float:
    """Measured dense matmul throughput in FLOP/s for an n x n x n product."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up: kernel selection, page faults
    count, start = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 2:
            return 2 * n**3 * count / elapsed


@functools.lru_cache(maxsize=None)
def _cpu_bf16_is_faster() -> bool:
    # Many CPUs (AVX2 without AVX512-BF16/AMX) emulate bf16 matmuls and run them several times
    # slower than fp32; others (Sapphire Rapids, Zen 4+) run them 3-6x faster. Measure, not guess.
    fp32 = matmul_flops(torch.float32, "cpu", n=256, seconds=0.05)
    bf16 = matmul_flops(torch.bfloat16, "cpu", n=256, seconds=0.05)
    log.info("cpu matmul: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s", fp32 / 1e9, bf16 / 1e9)
    return bf16 > 1.2 * fp32


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for `name` on `device` (None = plain fp32). `auto` picks bf16 where it is
    fast: on CUDA when supported, on CPU when a quick benchmark shows it beats fp32."""
    if name not in ("auto", *PRECISIONS):
        raise ValueError(f"unknown precision {name!r}; one of ['auto', 'bf16', 'fp16', 'fp32']")
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu":
            return torch.bfloat16 if _cpu_bf16_is_faster() else None
        return None
    if name == "fp16" and device.type != "cuda":
        # Training in fp16 needs a gradient scaler, which t2i runs on CUDA only.
        log.warning("fp16 training is supported on CUDA only; using bf16 on %s", device.type)
        return torch.bfloat16
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bf16; using fp16 (with a gradient scaler)")
        return torch.float16
    return PRECISIONS[name]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
