import json

import torch

from t2i.config import get_preset
from t2i.data import load_fashion_mnist
from t2i.evaluate import benchmark, load_classifier, predict


def test_shipped_classifier_reaches_its_recorded_accuracy():
    model, meta = load_classifier()
    test = load_fashion_mnist("test")
    x, y = test.batch(torch.arange(2000))
    acc = (predict(model, x) == y).float().mean().item()
    assert meta["test_accuracy"] > 0.9
    assert abs(acc - meta["test_accuracy"]) < 0.03


def test_benchmark_reports_throughput_and_utilisation():
    report = benchmark(get_preset("debug").override(["train.device=cpu"]), train_steps=2,
                       sample_images=10, warmup=1)
    json.dumps(report)
    assert report["train_img_per_s"] > 0 and report["sample_img_per_s"] > 0
    assert report["train_GFLOP_per_img"] > 0 and 0 < report["train_MFU"] < 1.5
