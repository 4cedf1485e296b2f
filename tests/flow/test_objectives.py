import pytest
import torch

from t2i.flow.objectives import (
    CleanImage,
    CleanImageVelocityLoss,
    Diffusion,
    FlowMatching,
    build_objective,
)
from t2i.flow.paths import interpolate
from t2i.flow.samplers import euler, heun
from t2i.sections import ObjectiveConfig


@pytest.mark.parametrize("objective", [FlowMatching(), CleanImage(), CleanImageVelocityLoss(), Diffusion("eps"),
                                       Diffusion("v")], ids=["flow", "x0", "xflow", "eps", "v"])
def test_true_prediction_converts_to_the_true_velocity(objective):
    x, noise = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    t = objective.sample_t(5).clamp(0.01, 0.95)
    x_t = interpolate(x, noise, t)
    pred = objective.target(x, noise, t)
    torch.testing.assert_close(objective.to_velocity(pred, x_t, t), x - noise, rtol=1e-4, atol=1e-4)
    assert objective.loss(pred, x, noise, t).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("solve", [euler, heun])
def test_clean_image_oracle_samples_its_image(solve):
    # A model that always predicts the same clean image must carry any noise to exactly it.
    obj = CleanImage()
    target = torch.randn(1, 1, 4, 4)
    out = solve(lambda x, t: obj.to_velocity(target.expand_as(x), x, t), torch.randn(3, 1, 4, 4), 9)
    torch.testing.assert_close(out, target.expand(3, -1, -1, -1), rtol=1e-4, atol=1e-4)


def test_xflow_loss_is_the_velocity_error_with_the_gap_clamped():
    obj = CleanImageVelocityLoss()
    x, noise = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4)
    # The clean image off by 0.1 everywhere at t = 0.5: the velocity off by 0.1 / (1 - t) = 0.2.
    assert obj.loss(x + 0.1, x, noise, torch.tensor([0.5])).item() == pytest.approx(0.04, rel=1e-4)
    # Near the data, 1 - t = 0.01 is clamped to 0.05: the error is divided by 0.05, not 0.01.
    t = torch.tensor([0.99])
    x_t = interpolate(x, noise, t)
    clamped = (((x + 0.1 - x_t) / 0.05 - (x - noise)) ** 2).mean().item()
    assert obj.loss(x + 0.1, x, noise, t).item() == pytest.approx(clamped, rel=1e-4)
    assert clamped < (((x + 0.1 - x_t) / 0.01 - (x - noise)) ** 2).mean().item() / 10
    # Times are flow matching's (logit-normal by default), not x0's noise-level Beta.
    assert obj.sample_t(100_000).mean().item() == pytest.approx(0.5, abs=5e-3)


def test_clean_image_noise_levels_follow_the_beta_recipe():
    obj = CleanImage(beta_a=1.0, beta_b=2.5, s_min=0.01, s_max=0.99)
    t = obj.sample_t(200_000)
    s = 1 - t
    assert s.min() >= 0.01 - 1e-6 and s.max() <= 0.99 + 1e-6
    # mean of Beta(1, 2.5) is 1 / 3.5, rescaled into [0.01, 0.99]
    assert s.mean().item() == pytest.approx(0.01 + 0.98 / 3.5, abs=3e-3)


def test_flow_time_sampling():
    uniform = FlowMatching("uniform").sample_t(100_000)
    assert uniform.mean().item() == pytest.approx(0.5, abs=5e-3)
    assert uniform.min() >= 0 and uniform.max() <= 1
    ln = FlowMatching("logit_normal").sample_t(100_000)
    assert ln.mean().item() == pytest.approx(0.5, abs=5e-3)
    assert ((ln > 0.25) & (ln < 0.75)).float().mean() > ((uniform > 0.25) & (uniform < 0.75)).float().mean()


def test_build_objective():
    assert isinstance(build_objective(ObjectiveConfig(kind="x0")), CleanImage)
    assert isinstance(build_objective(ObjectiveConfig(kind="flow")), FlowMatching)
    assert isinstance(build_objective(ObjectiveConfig(kind="xflow")), CleanImageVelocityLoss)
    assert build_objective(ObjectiveConfig(kind="v")).prediction == "v"
    with pytest.raises(ValueError, match="flow"):
        build_objective(ObjectiveConfig(kind="score"))


def test_v_target_and_model_input_are_salimans_and_ho_on_the_cosine_schedule():
    """At cosine noise level s: alpha = cos(pi s / 2), sigma = sin(pi s / 2); the v target is
    alpha noise - sigma x, and x_t / h (paths.vp) is the VP point alpha x + sigma noise."""
    from t2i.flow.paths import cosine_t, vp

    x, noise = torch.randn(4, 1, 2, 2, dtype=torch.float64), torch.randn(4, 1, 2, 2, dtype=torch.float64)
    s = torch.tensor([0.1, 0.3, 0.5, 0.85], dtype=torch.float64)
    alpha, sigma = torch.cos(torch.pi / 2 * s).view(-1, 1, 1, 1), torch.sin(torch.pi / 2 * s).view(-1, 1, 1, 1)
    t = cosine_t(s)
    a, b, h = vp(t.view(-1, 1, 1, 1))
    torch.testing.assert_close((a, b), (alpha, sigma))
    torch.testing.assert_close(interpolate(x, noise, t) / h, alpha * x + sigma * noise)
    torch.testing.assert_close(Diffusion("v").target(x, noise, t), alpha * noise - sigma * x)


def test_ot_pairing_is_a_permutation_that_lowers_the_transport_cost():
    from t2i.flow.objectives import ot_pairing
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 4, 4, generator=g) + 3.0 * torch.arange(16).view(16, 1, 1, 1) % 5
    noise = torch.randn(16, 1, 4, 4, generator=g)
    paired = ot_pairing(x, noise)
    # The same noise samples, reordered.
    assert sorted(paired.flatten(1).sum(1).tolist()) == sorted(noise.flatten(1).sum(1).tolist())
    cost = lambda n: (x - n).pow(2).sum().item()
    assert cost(paired) < cost(noise)
    # Optimal: no swap of two pairs lowers it further.
    for i in range(16):
        for j in range(i + 1, 16):
            swapped = paired.clone()
            swapped[[i, j]] = paired[[j, i]]
            assert cost(swapped) >= cost(paired) - 1e-4
