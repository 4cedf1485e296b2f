import math

import pytest
import torch

from t2i.flow.samplers import euler, get_sampler, guidance, heun


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
    out = guidance(velocity, cond, null, 1.0)(x, t)
    torch.testing.assert_close(out, _toy_velocity(x, t, *cond))
    assert calls == [4]  # no unconditional pass at scale 1


def test_cfg_formula():
    x = torch.randn(2, 1, 2, 2)
    t = torch.zeros(2)
    cond = (torch.ones(2, 1, 3), torch.ones(2, 1, dtype=torch.bool))  # v_cond = 3
    null = (torch.full((2, 1, 3), 1 / 3), torch.ones(2, 1, dtype=torch.bool))  # v_uncond = 1
    out = guidance(_toy_velocity, cond, null, 2.5)(x, t)
    torch.testing.assert_close(out, torch.full_like(x, 1 + 2.5 * (3 - 1)))


def test_guidance_interval():
    """Inside [start, end) the guided velocity, outside the conditional one alone, with the
    unconditional pass skipped when no sample of the batch is inside; per sample when t varies."""
    calls = []

    def velocity(x, t, tokens, mask):
        calls.append(len(x))
        return _toy_velocity(x, t, tokens, mask)
    x = torch.randn(2, 1, 2, 2)
    cond = (torch.ones(2, 1, 3), torch.ones(2, 1, dtype=torch.bool))  # v_cond = 3
    null = (torch.full((2, 1, 3), 1 / 3), torch.ones(2, 1, dtype=torch.bool))  # v_uncond = 1
    guided = guidance(velocity, cond, null, 2.5, interval=(0.2, 0.8))
    torch.testing.assert_close(guided(x, torch.full((2,), 0.1)), torch.full_like(x, 3.0))
    assert calls == [2]  # conditional only
    torch.testing.assert_close(guided(x, torch.full((2,), 0.5)), torch.full_like(x, 6.0))
    torch.testing.assert_close(guided(x, torch.full((2,), 0.8)), torch.full_like(x, 3.0))  # end excluded
    mixed = guided(x, torch.tensor([0.5, 0.9]))
    torch.testing.assert_close(mixed[0], torch.full_like(x[0], 6.0))
    torch.testing.assert_close(mixed[1], torch.full_like(x[1], 3.0))
    with pytest.raises(ValueError, match="interval"):
        guidance(velocity, cond, null, 2.5, interval=(0.8, 0.2))


def test_unknown_sampler():
    with pytest.raises(ValueError, match="euler"):
        get_sampler("dpm")


def _gaussian_velocity(m: float, sd: float):
    """The exact velocity of the straight-line path for data ~ N(m, sd^2) per pixel:
    E[x | x_t] - E[noise | x_t] with x_t = t x + (1 - t) noise."""
    def velocity(x, t):
        t = t.view(-1, *([1] * (x.dim() - 1)))
        var = t ** 2 * sd ** 2 + (1 - t) ** 2
        resid = x - t * m
        return (m + t * sd ** 2 * resid / var) - (1 - t) * resid / var
    return velocity


@pytest.mark.parametrize("name", ["euler", "ddim", "ddpm", "heun"])
def test_every_sampler_reaches_a_known_gaussian(name):
    """With the exact velocity of N(2, 0.5^2) data, samples from N(0, 1) noise must end up with
    that mean and spread: ODE samplers by transport, DDPM by its posterior noise (a wrong
    variance formula shows up here as a wrong spread). Steps for a 1% error: first-order
    samplers need more (Euler's spread is 0.488 at 50 steps); ancestral sampling most (0.468 at
    50 steps, 0.491 at 200, 0.496 at 1000)."""
    solve = get_sampler(name)
    steps, tol = {"heun": 50, "euler": 200, "ddim": 200, "ddpm": 1000}[name], 0.01
    x = torch.randn(20_000, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    out = solve(_gaussian_velocity(2.0, 0.5), x, steps, generator=torch.Generator().manual_seed(1))
    assert out.mean().item() == pytest.approx(2.0, abs=tol)
    assert out.std().item() == pytest.approx(0.5, abs=tol)


def test_ddim_is_the_textbook_update_on_the_cosine_schedule():
    """Song et al.'s deterministic update z' = alpha' x0 + sigma' eps in variance-preserving
    coordinates, written out independently, matches `ddim` step for step."""
    velocity = _gaussian_velocity(0.3, 0.7)
    x = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    steps = 10
    out = get_sampler("ddim")(velocity, x, steps)
    s_grid = torch.linspace(1, 0, steps + 1).tolist()
    z = x.clone()  # at s = 1: alpha = 0, sigma = 1, so z = x_t = noise
    for s, s_next in zip(s_grid[:-1], s_grid[1:]):
        a, sg = math.cos(math.pi * s / 2), math.sin(math.pi * s / 2)
        a2, sg2 = math.cos(math.pi * s_next / 2), math.sin(math.pi * s_next / 2)
        t = a / (a + sg)
        x_t = z / (a + sg)  # onto the line, to ask the model
        v = velocity(x_t, torch.full((len(z),), t))
        x0, eps = x_t + (1 - t) * v, x_t - t * v
        z = a2 * x0 + sg2 * eps  # DDIM, eta = 0
    torch.testing.assert_close(out, z, rtol=1e-4, atol=1e-4)


def test_ddpm_is_stochastic_but_seeded():
    velocity = _gaussian_velocity(0.0, 1.0)
    x = torch.randn(4, 1, 2, 2)
    a = get_sampler("ddpm")(velocity, x, 5, generator=torch.Generator().manual_seed(3))
    b = get_sampler("ddpm")(velocity, x, 5, generator=torch.Generator().manual_seed(3))
    c = get_sampler("ddpm")(velocity, x, 5, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_clip_x0_clamps_the_clean_image_and_keeps_what_is_in_range():
    from t2i.flow.samplers import clip_x0

    target = torch.tensor([-3.0, -0.5, 0.25, 2.0]).view(4, 1, 1, 1)
    oracle = lambda x, t: (target - x) / (1 - t.view(-1, 1, 1, 1))  # noqa: E731 (velocity toward target)
    x = torch.randn(4, 1, 1, 1)
    out = euler(clip_x0(oracle), x, 6)
    torch.testing.assert_close(out, target.clamp(-1, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(euler(oracle, x, 6), target, rtol=1e-5, atol=1e-5)
