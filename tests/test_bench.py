import json

from t2i.bench import benchmark
from t2i.presets import get_preset


def test_benchmark_reports_throughput_and_utilisation():
    report = benchmark(get_preset("debug").override(["train.device=cpu"]), train_steps=2,
                       sample_images=10, warmup=1)
    json.dumps(report)
    assert report["train_img_per_s"] > 0 and report["sample_img_per_s"] > 0
    assert report["train_GFLOP_per_img"] > 0 and 0 < report["train_MFU"] < 1.5
