import math

import pytest
import torch

from t2i.samplers import cfg, euler, get_sampler, heun


@pytest.mark.parametrize("solve", [euler, heun])
def test_constant_velocity_integrates_exactly(solve):
    x0 = torch.randn(3, 1, 4, 4)
    c = torch.randn(3, 1, 4, 4)
    out = solve(lambda x, t: c, x0.clone(), steps=7)
    torch.testing.assert_close(out, x0 + c)


@pytest.mark.parametrize("solve", [euler, heun])
def test_time_dependent_velocity(solve):
    # dx/dt = 2t integrates to x0 + 1 from t = 0 to 1. Heun is exact for linear-in-t fields
    # except on its final (Euler) step; Euler is off by the trapezoid error of every step.
    x0 = torch.zeros(1, 1, 1, 1)
    out = solve(lambda x, t: 2 * t.view(-1, 1, 1, 1), x0, steps=10).item()
    expected_err = {euler: 0.1, heun: 0.01}[solve]  # Euler: sum over steps of h^2 ; Heun: last h^2
    assert out == pytest.approx(1 - expected_err, abs=1e-6)


def test_heun_is_more_accurate_than_euler():
    # dx/dt = x, x(0) = 1 -> e at t = 1
    f = lambda x, t: x  # noqa: E731
    one = torch.ones(1, 1, 1, 1)
    err_e = abs(euler(f, one, 10).item() - math.e)
    err_h = abs(heun(f, one, 10).item() - math.e)
    assert err_h < err_e / 3


def test_callback_sees_every_step_and_clean_estimate():
    seen = []
    target = torch.full((2, 1, 2, 2), 0.5)
    noise = torch.randn(2, 1, 2, 2)
    # the straight-line velocity toward `target` from the noise: x1 must equal target each step
    euler(lambda x, t: target - noise, noise.clone(), steps=5,
          callback=lambda i, t, x, x1: seen.append((i, t, x1.clone())))
    assert [s[0] for s in seen] == list(range(5))
    assert seen[-1][1] == pytest.approx(1.0)
    for _, _, x1 in seen:
        torch.testing.assert_close(x1, target)


def _toy_velocity(x, t, tokens, mask):
    return x * 0 + tokens.sum(dim=(1, 2)).view(-1, 1, 1, 1)


def test_cfg_scale_one_is_the_conditional_prediction():
    calls = []

    def velocity(x, t, tokens, mask):
        calls.append(len(x))
        return _toy_velocity(x, t, tokens, mask)
    x = torch.randn(4, 1, 2, 2)
    t = torch.zeros(4)
    cond = (torch.ones(4, 1, 3), torch.ones(4, 1, dtype=torch.bool))
    null = (torch.zeros(4, 1, 3), torch.ones(4, 1, dtype=torch.bool))
    out = cfg(velocity, cond, null, 1.0)(x, t)
    torch.testing.assert_close(out, _toy_velocity(x, t, *cond))
    assert calls == [4]  # no unconditional pass at scale 1


def test_cfg_formula():
    x = torch.randn(2, 1, 2, 2)
    t = torch.zeros(2)
    cond = (torch.ones(2, 1, 3), torch.ones(2, 1, dtype=torch.bool))  # v_cond = 3
    null = (torch.full((2, 1, 3), 1 / 3), torch.ones(2, 1, dtype=torch.bool))  # v_uncond = 1
    out = cfg(_toy_velocity, cond, null, 2.5)(x, t)
    torch.testing.assert_close(out, torch.full_like(x, 1 + 2.5 * (3 - 1)))


def test_unknown_sampler():
    with pytest.raises(ValueError, match="euler"):
        get_sampler("dpm")
