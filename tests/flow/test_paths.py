
import pytest
import torch

from t2i.flow.objectives import Diffusion
from t2i.flow.paths import interpolate, sample_times, shift_time, time_grid


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


@pytest.mark.parametrize("spacing", ["uniform", "cosine"])
def test_a_shift_moves_the_steps_toward_the_noise_and_keeps_the_ends(spacing):
    plain = time_grid(12, spacing, t_start=0.01, t_end=0.99)
    assert time_grid(12, spacing, t_start=0.01, t_end=0.99, shift=1.0) == plain
    shifted = time_grid(12, spacing, t_start=0.01, t_end=0.99, shift=3.0)
    assert shifted[0] == pytest.approx(plain[0], abs=1e-6) and shifted[-1] == pytest.approx(plain[-1], abs=1e-6)
    assert all(a < b for a, b in zip(shifted, shifted[1:]))
    assert all(s < p for s, p in zip(shifted[1:-1], plain[1:-1]))
    for bad in (0.0, float("nan")):
        with pytest.raises(ValueError, match="shift"):
            time_grid(4, shift=bad)


def test_shift_time_is_sd3s_noise_level_shift():
    # noise level sigma = 1 - t goes to 3 sigma / (1 + 2 sigma): t = 1/2 -> 1/4
    assert shift_time(0.5, 3.0) == pytest.approx(0.25)
    assert shift_time(0.0, 3.0) == 0 and shift_time(1.0, 3.0) == 1
    # a logit-normal time of mean -log(shift) is a shifted logit-normal time of mean 0
    torch.manual_seed(0)
    a = sample_times(200_000, mean=-torch.log(torch.tensor(3.0)).item())
    b = shift_time(sample_times(200_000), 3.0)
    assert a.median().item() == pytest.approx(b.median().item(), abs=0.01)


def test_interpolate_endpoints():
    x, noise = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(interpolate(x, noise, torch.zeros(2)), noise)
    torch.testing.assert_close(interpolate(x, noise, torch.ones(2)), x)


def test_cosine_schedule_times():
    t = Diffusion("eps").sample_t(100_000)
    assert t.min() >= 0 and t.max() <= 1
    assert t.mean().item() == pytest.approx(0.5, abs=5e-3)  # symmetric around s = 1/2
    assert 0 < Diffusion("eps").t_start < 0.002 and Diffusion("v").t_start == 0
