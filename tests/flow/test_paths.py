
import pytest
import torch

from t2i.flow.objectives import Diffusion
from t2i.flow.paths import interpolate, time_grid


def test_cosine_grid_starts_where_asked():
    grid = time_grid(8, "cosine", t_start=0.01)
    assert grid[0] == pytest.approx(0.01, abs=1e-6) and grid[-1] == 1.0 and len(grid) == 9
    assert all(a < b for a, b in zip(grid, grid[1:]))
    assert time_grid(4, "cosine")[2] == pytest.approx(0.5)  # s = 1/2 is t = 1/2


@pytest.mark.parametrize("spacing", ["uniform", "cosine"])
def test_grids_can_stop_short_of_the_data(spacing):
    grid = time_grid(25, spacing, t_start=0.01, t_end=0.99)  # noise levels 0.99 -> 0.01
    assert len(grid) == 26 and grid[0] == pytest.approx(0.01, abs=1e-5) and grid[-1] == pytest.approx(0.99)
    assert all(a < b for a, b in zip(grid, grid[1:]))


def test_interpolate_endpoints():
    x, noise = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(interpolate(x, noise, torch.zeros(2)), noise)
    torch.testing.assert_close(interpolate(x, noise, torch.ones(2)), x)


def test_cosine_schedule_times():
    t = Diffusion("eps").sample_t(100_000)
    assert t.min() >= 0 and t.max() <= 1
    assert t.mean().item() == pytest.approx(0.5, abs=5e-3)  # symmetric around s = 1/2
    assert 0 < Diffusion("eps").t_start < 0.002 and Diffusion("v").t_start == 0
