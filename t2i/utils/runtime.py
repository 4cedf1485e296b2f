"""Device and numeric precision: one place decides where and in what precision we compute."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import platform
import shutil
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist

from .fsutil import cache_dir, write_text_atomic

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
    """This process's device. Under torchrun it also joins the process group — NCCL on GPUs,
    gloo on CPUs — and takes GPU LOCAL_RANK; one process under torchrun is DDP of one (the path a
    single-GPU node of a cluster job takes). A plain `t2i train` never starts a process group."""
    device = resolve_device(device_name)
    launched = all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))  # torchrun's
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not launched:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def distributed() -> bool:
    """Whether this process is in a process group (under torchrun, even alone)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a process group."""
    if distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def await_release(tensor: torch.Tensor, timeout: float = 10.0) -> None:
    """Return once no one but the caller holds `tensor`. A gloo collective returns before its
    worker thread has dropped its references to the tensor; a thread that drops the last
    reference to a tensor Python has seen needs the GIL, and during interpreter shutdown it
    cannot take it: the process aborts (SIGABRT, "terminate called without an active
    exception"), a few runs in a hundred under load at the end of `t2i train --nproc 2`. Sleeping
    releases the GIL, so the worker finishes here, while Python is alive."""
    deadline = time.perf_counter() + timeout
    while tensor._use_count() > 1 and time.perf_counter() < deadline:
        time.sleep(1e-4)


@contextlib.contextmanager
def main_process_first():
    """Rank 0 runs the block first (e.g. building a cache), the other ranks after it is done."""
    rank, world = rank_and_world()
    if world > 1 and rank != 0:
        dist.barrier()
    yield
    if world > 1 and rank == 0:
        dist.barrier()


def matmul_flops(dtype: torch.dtype, device: torch.device | str = "cpu", n: int = 0,
                 seconds: float = 0.3) -> float:
    """Measured dense matmul throughput in FLOP/s for an n x n x n product (n = 0: 8192 on a
    GPU, whose peak only large products reach, else 1024)."""
    n = n or (8192 if torch.device(device).type == "cuda" else 1024)
    # Its own random numbers: a measurement must not move the caller's stream (a second
    # Trainer in one process would start from other weights than the first).
    generator = torch.Generator(device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=generator).to(dtype)
    b = torch.randn(n, n, device=device, generator=generator).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else None
    return 2 * n**3 / seconds_per_call(lambda: a @ b, seconds, sync=sync)


def seconds_per_call(fn: Callable[[], object], seconds: float, min_calls: int = 2,
                     sync: Optional[Callable[[], None]] = None) -> float:
    """Mean seconds of `fn()` after one untimed call (kernel selection, page faults): called until
    `seconds` have passed and at least `min_calls` times, `sync()` after each (CUDA work is
    asynchronous)."""
    fn()
    count, start = 0, time.perf_counter()
    while True:
        fn()
        count += 1
        if sync is not None:
            sync()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= min_calls:
            return elapsed / count


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


def cpu_model() -> str:
    """The processor's model name (precision choices are cached per machine kind)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose_precision(name: str, device: torch.device, time_step: Callable[[Optional[torch.dtype]], float],
                     key: dict, cache: Optional[Path] = None, repeats: int = 3) -> tuple[Optional[torch.dtype], str]:
    """The autocast dtype of a training run, decided end to end: with `auto` on a CPU whose
    bf16 matmuls are faster than fp32 ones, `time_step(dtype)` (seconds for one real training
    step, nothing kept) is timed `repeats` times in each of two blocks per precision, and bf16 is
    taken only if its median step is at least 10% faster — a matmul micro-benchmark alone overstates it for
    small models (DiT step of a 5M-parameter model: no faster in bf16 on an AVX-512-BF16 CPU).
    The answer is cached in `cache` (a JSON file) per CPU model, torch version and `key` (what
    the step is: model, batch). Returns (dtype, the decision in words)."""
    if name != "auto" or device.type != "cpu":
        dtype = resolve_precision(name, device)
        return dtype, f"{name}: {'fp32' if dtype is None else str(dtype).split('.')[-1]}"
    if not _cpu_bf16_is_faster():
        return None, "auto: fp32 (bf16 matmuls are slower than fp32 on this CPU)"
    entry = json.dumps({**key, "cpu": cpu_model(), "torch": torch.__version__}, sort_keys=True)
    known = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    if entry not in known:
        # Blocks in the order fp32, bf16, fp32, bf16, each warmed up first: switching dtype
        # every step makes the CPU kernels re-pack their weights (fp32 then measured 2x slow,
        # which a run in one dtype never sees), and two blocks each balance a machine that
        # speeds up or slows down meanwhile.
        samples = {"fp32": [], "bf16": []}
        for _ in range(2):
            for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
                time_step(dtype)  # warm-up: kernel selection, allocations
                samples[label] += [time_step(dtype) for _ in range(repeats)]
        known[entry] = times = {label: statistics.median(v) for label, v in samples.items()}
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cache, json.dumps(known, indent=2))
    times = known[entry]
    bf16 = times["bf16"] < 0.9 * times["fp32"]
    words = (f"auto: {'bf16' if bf16 else 'fp32'} (a training step took {times['fp32'] * 1e3:.0f} ms "
             f"in fp32, {times['bf16'] * 1e3:.0f} ms in bf16 here)")
    log.info("precision %s", words)
    return (torch.bfloat16 if bf16 else None), words


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def compile_module(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`torch.compile(module)` (train.compile, sampling's `--compile`), its kernels kept in
    t2i's cache folder: the first compile of a model on a machine takes 30-60 s on a 2-core
    CPU, a later run finds them there in ~3 s (torch's default folder is under /tmp, which many
    systems empty at boot). On a CPU the kernels are C++, built by the machine's compiler: where
    there is none, or where it cannot build them (a toolchain without OpenMP's headers, say),
    the module is returned as it is, with a warning, rather than failing at the first call."""
    compilers = (os.environ.get("CXX", "g++"), "c++", "clang++")
    if device.type == "cpu" and not any(shutil.which(c) for c in compilers):
        log.warning("compile: no C++ compiler (g++, c++ or clang++) found, which torch.compile "
                    "needs on a CPU; running uncompiled")
        return module
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
    if device.type == "cpu" and (problem := _compile_problem()):
        log.warning("compile: torch.compile cannot build kernels here (%s); running uncompiled",
                    problem)
        return module
    log.info("compile: the first call compiles the model (30-60 s on a 2-core CPU the first time, "
             "seconds once its kernels are in %s)", os.environ["TORCHINDUCTOR_CACHE_DIR"])
    return torch.compile(module)


def _compile_problem() -> Optional[str]:
    """Why torch.compile fails on this CPU, or None: one tiny kernel compiled and run (a second
    or two the first time, then cached)."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(8))
    except Exception as e:  # whatever the toolchain raises: the run goes on uncompiled
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return None
