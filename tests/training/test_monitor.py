import pytest
import torch

from t2i.training.monitor import batch_statistics


def test_statistics_split_the_velocity_by_time_bucket():
    x = torch.full((4, 1, 2, 2), 0.5)
    t = torch.tensor([0.1, 0.3, 0.6, 1.0])
    velocity = torch.tensor([2.0, 0.0, 1.0, 3.0]).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    stats = batch_statistics(x, velocity, torch.ones_like(x), t)
    assert stats["stats/data_mean"] == pytest.approx(0.5) and stats["stats/data_std"] == 0.0
    assert stats["stats/velocity_rms_t0.00-0.25"] == pytest.approx(2.0)
    assert stats["stats/velocity_rms_t0.25-0.50"] == 0.0
    assert stats["stats/velocity_rms_t0.50-0.75"] == pytest.approx(1.0)
    assert stats["stats/velocity_rms_t0.75-1.00"] == pytest.approx(3.0)  # t = 1 is in the last
    assert stats["stats/target_rms_t0.75-1.00"] == pytest.approx(1.0)
    # A bucket without samples is left out rather than logged as 0.
    assert "stats/velocity_rms_t0.00-0.25" not in batch_statistics(x[2:], velocity[2:], x[2:], t[2:])
