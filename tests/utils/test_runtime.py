import logging
import time

import pytest
import torch

from t2i.utils import runtime


def test_auto_device_falls_back_to_cpu_and_missing_devices_are_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA"):
        runtime.resolve_device("cuda")
    with pytest.raises(ValueError, match="no MPS"):
        runtime.resolve_device("mps")
    with pytest.raises(ValueError, match="unknown device"):
        runtime.resolve_device("tpu")
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("mps")


def test_precision_choices_fall_back_with_a_warning(caplog, monkeypatch):
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("fp32", cpu) is None
    assert runtime.resolve_precision("bf16", cpu) is torch.bfloat16
    with caplog.at_level(logging.WARNING):
        assert runtime.resolve_precision("fp16", cpu) is torch.bfloat16
    assert "CUDA only" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert runtime.resolve_precision("bf16", torch.device("cuda")) is torch.float16
    with pytest.raises(ValueError, match="unknown precision"):
        runtime.resolve_precision("int8", cpu)


def test_auto_precision_on_cpu_follows_the_measurement(monkeypatch):
    monkeypatch.setattr(runtime, "_cpu_bf16_is_faster", lambda: False)
    assert runtime.resolve_precision("auto", torch.device("cpu")) is None
    monkeypatch.setattr(runtime, "_cpu_bf16_is_faster", lambda: True)
    assert runtime.resolve_precision("auto", torch.device("cpu")) is torch.bfloat16


def test_measuring_the_matmul_peak_leaves_the_global_random_stream_alone():
    """`precision auto` measures matmuls once per process: had they drawn from the global
    stream, the first Trainer of a process would start from other weights than a second one
    of the same seed (and a resumed run would not end where an uninterrupted one does)."""
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    assert runtime.matmul_flops(torch.float32, "cpu", n=64, seconds=0.001) > 0
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)


def test_single_process_never_starts_a_process_group(monkeypatch):
    import torch.distributed as dist

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert runtime.init_distributed("cpu") == torch.device("cpu")
    assert not dist.is_initialized() and runtime.rank_and_world() == (0, 1)
    with runtime.main_process_first():
        pass


def test_one_process_under_torchrun_is_a_process_group_of_one(monkeypatch):
    """torchrun's environment with WORLD_SIZE=1 starts a (gloo) group of one — DDP of one, the
    path a single-GPU node takes; a stray MASTER_ADDR alone starts nothing."""
    import socket

    import torch.distributed as dist

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    runtime.init_distributed("cpu")
    assert not runtime.distributed()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    try:
        runtime.init_distributed("cpu")
        assert runtime.distributed() and dist.get_backend() == "gloo"
        assert runtime.rank_and_world() == (0, 1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_auto_precision_is_decided_by_timing_the_real_step_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "_cpu_bf16_is_faster", lambda: True)  # as on an AVX512-BF16 CPU
    cpu, cache = torch.device("cpu"), tmp_path / "precision.json"
    calls = []

    def timer(seconds):
        def time_step(dtype):
            calls.append(dtype)
            return seconds[dtype]
        return time_step
    fast_bf16 = timer({None: 1.0, torch.bfloat16: 0.5})
    dtype, words = runtime.choose_precision("auto", cpu, fast_bf16, {"model": 1}, cache)
    assert dtype == torch.bfloat16 and "1000 ms in fp32, 500 ms in bf16" in words
    # Two blocks per precision, each a warm-up and 3 timed steps: fp32, bf16, fp32, bf16.
    assert calls == ([None] * 4 + [torch.bfloat16] * 4) * 2
    calls.clear()
    assert runtime.choose_precision("auto", cpu, fast_bf16, {"model": 1}, cache)[0] == torch.bfloat16
    assert calls == []  # cached for this CPU, torch and key
    same_speed = timer({None: 1.0, torch.bfloat16: 0.95})  # within 10%: not worth bf16's rounding
    assert runtime.choose_precision("auto", cpu, same_speed, {"model": 2}, cache)[0] is None
    assert runtime.choose_precision("fp32", cpu, same_speed, {"model": 3}, cache)[0] is None
    monkeypatch.setattr(runtime, "_cpu_bf16_is_faster", lambda: False)
    dtype, words = runtime.choose_precision("auto", cpu, same_speed, {"model": 4}, cache)
    assert dtype is None and "slower" in words


def test_timing_the_step_leaves_the_run_unchanged(tmp_path, monkeypatch, debug_config):
    """A run whose `auto` precision was measured trains exactly as a plain fp32 run."""
    import dataclasses

    from safetensors.torch import load_file

    from t2i.checkpoint import resolve_checkpoint
    from t2i.data import load_fashion_mnist
    from t2i.training.trainer import Trainer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "_cpu_bf16_is_faster", lambda: True)
    data = load_fashion_mnist("train", subset=64)
    weights = {}
    for precision in ("auto", "fp32"):
        cfg = dataclasses.replace(debug_config, train=dataclasses.replace(
            debug_config.train, precision=precision, steps=4))
        trainer = Trainer(cfg, tmp_path / precision, data=data, progress=False)
        if precision == "auto":
            assert "a training step took" in trainer.precision_note
            if trainer.dtype is not None:  # bf16 won here: nothing to compare bitwise
                return
        trainer.train()
        weights[precision] = load_file(resolve_checkpoint(tmp_path / precision) / "model.safetensors")
    for name in weights["fp32"]:
        torch.testing.assert_close(weights["auto"][name], weights["fp32"][name], rtol=0, atol=0)


def test_compile_keeps_kernels_in_the_t2i_cache_and_needs_a_compiler_on_cpu(tmp_path, monkeypatch, caplog):
    module, compiled = torch.nn.Linear(2, 2), []
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(m) or m)
    monkeypatch.setattr(runtime, "_compile_problem", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")  # so that teardown restores the variable,
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")  # which compile_module sets
    monkeypatch.setattr(runtime.shutil, "which", lambda name: f"/bin/{name}")
    assert runtime.compile_module(module, torch.device("cpu")) is module and compiled == [module]
    assert runtime.os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "t2i" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # the user's choice stands
    with caplog.at_level(logging.INFO):
        runtime.compile_module(module, torch.device("cpu"))
    assert runtime.os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    assert "first call compiles the model" in caplog.text and str(tmp_path / "mine") in caplog.text
    caplog.clear()
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING):
        assert runtime.compile_module(module, torch.device("cpu")) is module
    assert "no C++ compiler" in caplog.text and len(compiled) == 2


def test_compile_falls_back_to_eager_where_the_toolchain_cannot_build_kernels(monkeypatch, caplog):
    """A compiler that is there but cannot build inductor's kernels (no OpenMP headers, say)
    must not fail the run at its first step: the probe kernel's error is reported instead."""
    module = torch.nn.Linear(2, 2)

    def broken(fn):
        def run(*args):
            raise RuntimeError("C++ compile error\nfatal error: omp.h: No such file or directory")
        return run
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(runtime.shutil, "which", lambda name: f"/bin/{name}")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "unused")
    with caplog.at_level(logging.WARNING):
        assert runtime.compile_module(module, torch.device("cpu")) is module
    assert "cannot build kernels here (C++ compile error); running uncompiled" in caplog.text


def test_await_release_returns_once_the_caller_holds_the_last_reference():
    """What a gloo worker thread does after a collective returns: it still holds the tensor for
    a moment. Here an autograd graph holds it, and another thread lets go of it later."""
    import threading

    tensor = torch.ones(1, requires_grad=True)
    holder = [tensor * tensor]  # the graph saves the tensor: its use count rises above one
    assert tensor._use_count() > 1
    threading.Timer(0.2, holder.clear).start()
    start = time.perf_counter()
    runtime.await_release(tensor)
    assert time.perf_counter() - start >= 0.15 and tensor._use_count() == 1


def test_await_release_gives_up_after_its_timeout():
    tensor = torch.ones(1, requires_grad=True)
    product = tensor * tensor  # never let go
    start = time.perf_counter()
    runtime.await_release(tensor, timeout=0.1)
    assert time.perf_counter() - start < 2 and tensor._use_count() > 1 and product is not None


def test_seconds_per_call_times_a_call_after_an_untimed_one():
    calls, synced = [], []
    per_call = runtime.seconds_per_call(lambda: calls.append(1) or time.sleep(0.002), seconds=0.01,
                                        min_calls=3, sync=lambda: synced.append(1))
    assert len(calls) >= 4 and 0.002 <= per_call < 0.01  # one untimed, then >= 3 and >= 10 ms
    assert len(synced) == len(calls) - 1  # after each timed call
