
import torch

from t2i.data import load_fashion_mnist
from t2i.evaluation import (
    load_classifier,
    predict,
)


def test_shipped_classifier_reaches_its_recorded_accuracy():
    model, meta = load_classifier()
    test = load_fashion_mnist("test")
    x, y = test.batch(torch.arange(2000))
    acc = (predict(model, x) == y).float().mean().item()
    assert meta["test_accuracy"] > 0.9
    assert abs(acc - meta["test_accuracy"]) < 0.03
