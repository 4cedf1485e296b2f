import json

from t2i.presets import get_preset
from t2i.training.bench import benchmark


def test_benchmark_reports_throughput_and_utilisation():
    report = benchmark(get_preset("debug").override(["train.device=cpu"]), train_steps=2,
                       sample_images=10, warmup=1)
    json.dumps(report)
    assert report["train_img_per_s"] > 0 and report["sample_img_per_s"] > 0
    assert report["train_GFLOP_per_img"] > 0 and 0 < report["train_MFU"] < 1.5
    assert report["train_peak_memory_MiB"] > 0 and report["memory_measure"] == "CPU peak RSS"


def test_peak_memory_sees_an_allocation_after_a_reset():
    import mmap

    import torch

    from t2i.training.bench import peak_memory_mib, reset_peak_memory

    cpu = torch.device("cpu")
    reset_peak_memory(cpu)
    before = peak_memory_mib(cpu)
    # 64 MiB of fresh pages, each touched: a malloc'd tensor may reuse memory freed (but still
    # resident) by earlier tests in the same process, and then the RSS does not grow.
    block = mmap.mmap(-1, 64 * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    assert peak_memory_mib(cpu) > before + 60
    block.close()


def test_find_batch_doubles_until_the_extrapolated_peak_passes_the_budget(monkeypatch):
    import pytest

    from t2i.training import bench

    # A stand-in step timer: peak 100 MiB + 1 MiB per image, img/s best at batch 16.
    monkeypatch.setattr(bench, "time_steps", lambda trainer, steps, warmup: (
        {8: 50.0, 16: 80.0, 32: 70.0}.get(trainer.config.train.batch_size, 1.0),
        100.0 + trainer.config.train.batch_size))
    found = bench.find_batch(get_preset("debug").override(["train.device=cpu"]), budget_mib=140)
    # 8, 16 and 32 fit; 64 would reach 164 MiB (extrapolated from 32's 132 and 16's 116): not run.
    assert [r["batch_size"] for r in found["rows"]] == [8, 16, 32]
    assert found["largest"] == 32 and found["fastest"] == 16
    assert bench.find_batch(get_preset("debug"), budget_mib=1000, max_batch=16)["largest"] == 16
    with pytest.raises(ValueError, match="not even batch 8"):
        bench.find_batch(get_preset("debug"), budget_mib=50)
