
import pytest
import torch

from t2i.evaluation import (
    frechet_distance,
    precision_recall,
)


def test_frechet_distance_known_answers():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    b = torch.randn(4000, 8, generator=g, dtype=torch.float64)
    shifts = [frechet_distance(a, b + d) for d in (0.0, 0.5, 1.0, 2.0)]
    assert shifts[0] < 0.05 and shifts == sorted(shifts)
    # Equal covariances: FD is the squared distance of the means, 8 * 2^2 = 32.
    assert shifts[3] == pytest.approx(32, rel=0.05)
    # Equal means, covariance scaled by 4 (std x 2): tr(I + 4I - 2 * 2I) = 8.
    assert frechet_distance(a, 2 * b) == pytest.approx(8, rel=0.1)


def test_precision_recall_on_toy_distributions():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 2, generator=g)
    same = torch.randn(2000, 2, generator=g)
    far = torch.randn(2000, 2, generator=g) + 10
    collapsed = 0.1 * torch.randn(2000, 2, generator=g)  # realistic, but no variety
    p, r = precision_recall(real, same)
    assert p > 0.9 and r > 0.9
    assert precision_recall(real, far) == (0.0, 0.0)
    p, r = precision_recall(real, collapsed)
    assert p > 0.99 and r < 0.2


def test_inception_fid_without_torchmetrics_says_why(monkeypatch):
    import sys

    from t2i.evaluation import inception_fid

    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)
    images = torch.zeros(4, 1, 28, 28)
    fid, note = inception_fid(images, images)
    assert fid is None and "unavailable" in note and "torchmetrics" in note
