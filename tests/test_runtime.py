import logging

import pytest
import torch

from t2i import runtime


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


def test_single_process_never_starts_a_process_group(monkeypatch):
    import torch.distributed as dist

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert runtime.init_distributed("cpu") == torch.device("cpu")
    assert not dist.is_initialized() and runtime.rank_and_world() == (0, 1)
    with runtime.main_process_first():
        pass
