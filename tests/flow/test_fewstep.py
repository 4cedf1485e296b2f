"""Few-step objectives on known answers: a Gaussian data distribution, whose flow map between any
two times is exact, so its average velocity is known in closed form."""

import pytest
import torch

from t2i.flow.fewstep import (
    MeanFlow,
    Shortcut,
    adaptive_mse,
    finite_difference_jvp,
    fold_guidance,
    grid_steps,
    jvp,
)
from t2i.flow.samplers import fewstep, get_sampler
from t2i.models.dit import DiT
from t2i.sections import ModelConfig

MU, SIGMA = 1.5, 0.5  # data ~ N(MU, SIGMA^2) per element, noise ~ N(0, 1)


def _sd(t):
    return torch.sqrt((1 - t) ** 2 + (t * SIGMA) ** 2)


def _b(t, x):
    return t.view(-1, *[1] * (x.dim() - 1))


def flow_map(x, t, s):
    """Where the marginal ODE carries x from time t to time s: a Gaussian stays Gaussian, so the
    map is the affine one between N(t mu, sd(t)^2) and N(s mu, sd(s)^2)."""
    t, s = _b(t, x), _b(s, x)
    return s * MU + _sd(s) / _sd(t) * (x - t * MU)


def velocity(x, t):
    """The marginal velocity: the derivative of the flow map at s = t."""
    t = _b(t, x)
    d_sd = (-(1 - t) + t * SIGMA ** 2) / _sd(t)
    return MU + d_sd / _sd(t) * (x - t * MU)


def average(x, t, s):
    """The average velocity from t to s; the velocity itself where s = t."""
    length = _b(s - t, x)
    safe = torch.where(length == 0, torch.ones_like(length), length)
    return torch.where(length == 0, velocity(x, t), (flow_map(x, t, s) - x) / safe)


class Exact:
    """The exact average velocity as a few-step loss sees a model (fewstep.TwoTimeModel)."""

    def __call__(self, x, t, s):
        return average(x, t, s)

    def no_grad(self, x, t, s, rows=None):
        return average(x, t, s)

    def jvp(self, x, t, s, v):
        return jvp(average, (x, t, s), (v, torch.ones_like(t), torch.zeros_like(s)))


def _times(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(n, generator=g) * 0.9, torch.rand(n, generator=g) * 0.9
    return torch.minimum(a, b), torch.maximum(a, b) + 0.05  # s > t strictly


def test_one_mean_flow_step_lands_on_the_data_distribution():
    noise = torch.randn(20_000, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    x = fewstep(lambda x, t, s: average(x, t, s), noise, steps=1)
    assert abs(x.mean().item() - MU) < 0.02
    assert abs(x.std().item() - SIGMA) < 0.02


@pytest.mark.parametrize("objective", [MeanFlow(adaptive_p=0.0), Shortcut(adaptive_p=0.0, step_grid=(1, 2))])
def test_rows_at_s_equal_t_learn_the_velocity_itself(objective):
    """Over an empty interval the average velocity is the velocity: both objectives' s = t rows
    are plain flow matching, 0 for the exact model and the marginal velocity, not for a wrong one."""
    x_t = torch.randn(64, 1, 2, 2, dtype=torch.float64)
    t = torch.rand(64, dtype=torch.float64) * 0.9
    v = velocity(x_t, t)
    assert objective.loss(Exact(), x_t, t, t, v).item() < 1e-12
    assert objective.loss(Exact(), x_t, t, t, v + 0.1).item() == pytest.approx(0.01)


def test_the_mean_flow_target_of_the_exact_average_velocity_is_itself():
    """u = v + (s - t) du/dt holds for the exact u and the marginal v: the loss is 0, and it is
    not for a wrong v."""
    x_t = torch.randn(64, 1, 2, 2, dtype=torch.float64)
    t, s = (v.double() for v in _times(64))
    mf = MeanFlow(adaptive_p=0.0)
    assert mf.loss(Exact(), x_t, t, s, velocity(x_t, t)).item() < 1e-12
    assert mf.loss(Exact(), x_t, t, s, velocity(x_t, t) + 0.1).item() > 1e-4


def test_a_step_count_listed_twice_is_drawn_twice_as_often():
    torch.manual_seed(0)
    t, s = grid_steps(20_000, (1, 1, 2, 2, 4))
    counts = torch.round(1 / (s - t))
    share = {n: (counts == n).double().mean().item() for n in (1, 2, 4)}
    assert share == pytest.approx({1: 0.4, 2: 0.4, 4: 0.2}, abs=0.015)
    assert torch.allclose(t * counts, torch.round(t * counts))  # each a step of its grid


def test_two_exact_half_steps_make_the_shortcut_target_exact():
    sc = Shortcut(interval_fraction=1.0, adaptive_p=0.0, step_grid=(1, 2, 4, 8))
    t, s = (v.double() for v in sc.sample_times(256))
    assert set(torch.round(1 / (s - t)).tolist()) == {1.0, 2.0, 4.0, 8.0}
    coarse = s - t > 0.2  # 1, 2 or 4 steps: their half steps are trained lengths
    x_t = torch.randn(256, 1, 2, 2, dtype=torch.float64)
    v = velocity(x_t, t)
    assert sc.loss(Exact(), x_t[coarse], t[coarse], s[coarse], v[coarse]).item() < 1e-12
    # The finest steps (1/8) learn two Euler steps along the velocity: close, not exact.
    fine = ~coarse
    err = sc.loss(Exact(), x_t[fine], t[fine], s[fine], v[fine]).item()
    half = (s - t)[fine][:, None, None, None] / 2
    x_mid = x_t[fine] + half * v[fine]
    two_euler = (v[fine] + velocity(x_mid, t[fine] + half.flatten())) / 2
    expected = (average(x_t[fine], t[fine], s[fine]) - two_euler).pow(2).mean().item()
    assert 0 < err == pytest.approx(expected)


@pytest.mark.parametrize("separate", [False, True])
def test_the_jvp_equals_a_finite_difference_through_the_dit(separate):
    cfg = ModelConfig(width=32, depth=2, heads=2, patch_size=7)
    model = DiT(cfg, (1, 28, 28), text_dim=10, two_times=True).double()
    for p in model.parameters():  # leave adaLN-Zero's zeros: a zero model has a zero JVP
        torch.nn.init.normal_(p, std=0.05)
    x, t, s = torch.randn(3, 1, 28, 28).double(), torch.rand(3).double() * 0.5, torch.rand(3).double() * 0.5 + 0.5
    tokens, mask = torch.randn(3, 4, 10).double(), torch.tensor([[1, 1, 0, 0]] * 3).bool()
    v = torch.randn_like(x)
    fn = lambda x, t, s: model(x, t, tokens, mask, s)  # noqa: E731
    tangents = (v, torch.ones_like(t), torch.zeros_like(s))
    out, exact = jvp(fn, (x, t, s), tangents, separate=separate)
    with torch.no_grad():  # central difference: truncation error O(eps^2)
        eps = 1e-6
        approx = (fn(x + eps * v, t + eps, s) - fn(x - eps * v, t - eps, s)) / (2 * eps)
        _, forward = finite_difference_jvp(fn, (x, t, s), tangents, eps=1e-8)
    assert out.requires_grad  # the primal keeps its graph for the loss
    assert exact.abs().max() > 1e-3
    torch.testing.assert_close(exact, approx, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(forward, exact, atol=1e-4, rtol=1e-2)  # the fallback, coarser


def test_a_two_time_dit_at_s_equal_t_is_its_instantaneous_velocity():
    cfg = ModelConfig(width=32, depth=2, heads=2, patch_size=7)
    model = DiT(cfg, (1, 28, 28), text_dim=10, two_times=True)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    tokens, mask = torch.randn(2, 3, 10), torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(model(x, t, tokens, mask), model(x, t, tokens, mask, t))
    assert not torch.allclose(model(x, t, tokens, mask), model(x, t, tokens, mask, t + 0.5))
    with pytest.raises(ValueError, match="two_times"):
        DiT(cfg, (1, 28, 28), text_dim=10)(x, t, tokens, mask, t)


def test_folded_guidance():
    v_c, v_u = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    use = torch.tensor([True, True, False, True])
    torch.testing.assert_close(fold_guidance(v_c, v_u, 1.0, use), v_c)  # scale 1: conditional
    out = fold_guidance(v_c, v_u, 3.0, use)
    torch.testing.assert_close(out[use], (v_u + 3 * (v_c - v_u))[use])
    torch.testing.assert_close(out[~use], v_c[~use])


def test_adaptive_weighting_equalises_the_samples():
    pred, target = torch.zeros(2, 4), torch.tensor([[1.0] * 4, [10.0] * 4])
    assert adaptive_mse(pred, target, 0.0).item() == pytest.approx((1 + 100) / 2)
    assert adaptive_mse(pred, target, 1.0).item() == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("cls", [MeanFlow, Shortcut])
def test_time_pairs(cls):
    t, s = cls(interval_fraction=0.5).sample_times(4000)
    assert (s >= t).all() and (t >= 0).all() and (s <= 1).all()
    assert 0.4 < (s > t).float().mean() < 0.6


def test_the_fewstep_sampler_steps_along_the_average_velocity():
    calls = []

    def u(x, t, s):
        calls.append((t[0].item(), s[0].item()))
        return torch.ones_like(x)

    x = get_sampler("fewstep")(u, torch.zeros(2, 1, 2, 2), steps=2)
    assert calls == [(0.0, 0.5), (0.5, 1.0)]
    torch.testing.assert_close(x, torch.ones(2, 1, 2, 2))


@pytest.mark.parametrize("cls", [MeanFlow, Shortcut])
def test_known_targets_replace_their_rows(cls):
    """Rows whose target is known ahead (teacher paths) train on it, the others as before."""
    obj = cls(interval_fraction=1.0, adaptive_p=0.0, step_grid=(1, 2, 4))
    t, s = (v.double() for v in obj.sample_times(64))
    x_t = torch.randn(64, 1, 2, 2, dtype=torch.float64)
    v = velocity(x_t, t)
    rows = torch.arange(64) >= 48
    known = torch.zeros(16, 1, 2, 2, dtype=torch.float64)  # wrong on purpose: the loss shows it
    with_rows = obj.loss(Exact(), x_t, t, s, v, known=(rows, known)).item()
    # Plain MSE is the mean over rows: the other 48 rows' loss as without known rows (MeanFlow's
    # is ~0 for the exact model; the shortcut's finest steps are an Euler pair, not exact), plus
    # the known rows' error against the zeros, which is the exact average velocity's size.
    others = obj.loss(Exact(), x_t[~rows], t[~rows], s[~rows], v[~rows]).item()
    u = average(x_t, t, s)[rows]
    expected = (others * 48 + u.pow(2).flatten(1).mean(1).sum().item()) / 64
    assert with_rows == pytest.approx(expected, rel=1e-6)
