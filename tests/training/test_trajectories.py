import pytest
import torch

from t2i.training.trajectories import Trajectories


def _paths(n=3, S=8):
    """Paths whose state k of path j is the constant 10 j + k: every index shows in the value."""
    states = (10 * torch.arange(n)[:, None] + torch.arange(S + 1)[None]).float()
    return Trajectories(torch.arange(n), torch.zeros(n), states.view(n, S + 1, 1, 1, 1).expand(-1, -1, 1, 2, 2),
                        grid=(1, 2, 4), share=0.25)


def test_a_step_of_an_n_step_sampler_is_the_teachers_displacement_over_it():
    paths = _paths()
    j, counts, k = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 2, 4, 4]), torch.tensor([0, 1, 0, 3])
    x, t, s, target = paths.steps(j, counts, k)
    torch.testing.assert_close(t, torch.tensor([0, 0.5, 0, 0.75]))
    torch.testing.assert_close(s, torch.tensor([1, 1, 0.25, 1]))
    torch.testing.assert_close(x[:, 0, 0, 0], torch.tensor([0.0, 14, 20, 26]))  # states 0, 4, 0, 6
    # x + (s - t) * target is the state at s: 8, 18, 22, 28.
    torch.testing.assert_close((x + (s - t).view(-1, 1, 1, 1) * target)[:, 0, 0, 0],
                               torch.tensor([8.0, 18, 22, 28]))


def test_the_drawn_rows_are_the_last_of_the_global_batch_on_whichever_rank_holds_them():
    paths = _paths()
    draw = paths.draw(8)  # share 0.25: the last 2 rows of 8
    assert len(draw[0]) == 2 and set(draw[1].tolist()) <= {1, 2, 4}
    x_t, t, s, drop = torch.full((4, 1, 2, 2), -1.0), torch.zeros(4), torch.zeros(4), torch.ones(4, dtype=torch.bool)
    *_, known = paths.apply(draw, 8, slice(0, 4), x_t, t, s, drop)  # rank 0 of 2
    assert known is None  # none of the known rows is rank 0's
    x2, t2, s2, drop2, (rows, target) = paths.apply(draw, 8, slice(4, 8), x_t, t, s, drop)  # rank 1
    assert rows.tolist() == [False, False, True, True] and target.shape == (2, 1, 2, 2)
    assert (x2[:2] == -1).all() and (x2[2:] >= 0).all() and (x_t == -1).all()  # the input kept
    assert drop2.tolist() == [True, True, False, False] and (s2[2:] > t2[2:]).all()
    small = Trajectories(paths.idx, paths.u, paths.states, paths.grid, share=0.1)
    assert small.draw(4) is None  # round(0.4) = 0 rows


def test_the_step_grid_weights_the_path_rows_as_it_weights_the_others():
    paths = _paths()
    weighted = Trajectories(paths.idx, paths.u, paths.states, (1, 1, 2, 2, 4), share=1.0)
    torch.manual_seed(0)
    _, counts, k = weighted.draw(20_000)
    share = {n: (counts == n).double().mean().item() for n in (1, 2, 4)}
    assert share == pytest.approx({1: 0.4, 2: 0.4, 4: 0.2}, abs=0.015)
    assert (k < counts).all() and (k >= 0).all()


def test_the_paths_follow_the_teachers_guided_euler_steps(tmp_path):
    from t2i.cli import main
    from t2i.data import load_fashion_mnist
    from t2i.pipeline import Pipeline

    assert main(["-q", "train", "--preset", "debug", "--out", str(tmp_path), "train.steps=3",
                 "train.device=cpu", "train.precision=fp32"]) == 0
    teacher = Pipeline.from_pretrained(tmp_path, device="cpu", precision="fp32")
    data = load_fashion_mnist("train", subset=32)
    paths = Trajectories.build(teacher, data, 5, (1, 2), scale=3.0, interval=(0.3, 1.0), share=0.5, seed=0)
    assert paths.states.shape == (5, 5, 1, 28, 28) and paths.grid == (1, 2)
    again = Trajectories.build(teacher, data, 5, (1, 2), scale=3.0, interval=(0.3, 1.0), share=0.5, seed=0)
    torch.testing.assert_close(again.states, paths.states)  # every rank and resume builds the same
    cond, null = teacher.condition(data.captions_of(paths.idx, paths.u))
    x0, x1 = paths.states[:, 0], paths.states[:, 1]
    # The first step (t = 0, outside the guidance interval) is the conditional velocity alone.
    torch.testing.assert_close(x1 - x0, 0.25 * teacher.velocity(x0, torch.zeros(5), *cond))
    x2 = paths.states[:, 2]  # t = 0.5: inside the guidance interval
    x3 = paths.states[:, 3]
    v_c, v_u = teacher.velocity(x2, torch.full((5,), 0.5), *cond), teacher.velocity(x2, torch.full((5,), 0.5), *null)
    torch.testing.assert_close(x3 - x2, 0.25 * (v_u + 3.0 * (v_c - v_u)))
    assert x1.abs().max() > 0 and not torch.allclose(x1, x0)


def test_trajectories_train_a_distilled_student_resume_with_it_and_need_a_teacher(tmp_path):
    from t2i.cli import main
    from t2i.presets import get_preset
    from t2i.training.trainer import Trainer

    teacher = tmp_path / "teacher"
    assert main(["-q", "train", "--preset", "debug", "--out", str(teacher), "train.steps=3",
                 "train.device=cpu"]) == 0
    common = ["objective.kind=shortcut", "objective.step_grid=1,2", "objective.trajectories=8",
              "objective.trajectory_share=0.5", "objective.guidance=2", "train.steps=3", "train.device=cpu"]
    assert main(["-q", "train", "--preset", "debug", "--out", str(tmp_path / "student"),
                 f"train.init={teacher}", *common]) == 0
    resumed = Trainer(get_preset("debug").override(common), tmp_path / "student", resume="latest",
                      progress=False)
    assert resumed.step == 3 and resumed.teacher is not None  # a resumed distillation keeps its teacher
    with pytest.raises(ValueError, match="objective.trajectories needs a teacher"):
        Trainer(get_preset("debug").override(common), tmp_path / "alone", progress=False)
