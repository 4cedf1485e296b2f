import dataclasses
import json

import pytest
import torch

from t2i.data import load_fashion_mnist
from t2i.presets import get_preset
from t2i.training.loop import lr_factor
from t2i.training.trainer import Trainer


@pytest.fixture(scope="module")
def tiny_data():
    return load_fashion_mnist("train", subset=64)


def _with(cfg, **train):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train))


def test_lr_schedule():
    tc = get_preset("fmnist").train
    tc = dataclasses.replace(tc, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(tc, 0, 0.0) == pytest.approx(0.1)
    assert lr_factor(tc, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(tc, 50, 0.5) == pytest.approx(0.55)
    assert lr_factor(tc, 99, 1.0) == pytest.approx(0.1)
    assert lr_factor(dataclasses.replace(tc, schedule="constant"), 99, 1.0) == 1.0
    restarts = dataclasses.replace(tc, schedule="cosine_restarts", cycles=4, warmup_steps=0,
                                   min_lr_ratio=0.0)
    # Four cosine cycles over the run: each starts at 1, is at 1/2 halfway and restarts.
    assert [lr_factor(restarts, 0, p) for p in (0.0, 0.125, 0.2499, 0.25, 0.375, 1.0)] == pytest.approx(
        [1.0, 0.5, 0.0, 1.0, 0.5, 0.0], abs=1e-3)


def test_warm_up_can_start_from_a_fraction_of_the_lr():
    tc = dataclasses.replace(get_preset("fmnist").train, warmup_steps=10, warmup_start=0.1)
    # 0.1 + 0.9 * (step + 1) / 10: the first step a tenth above 10%, full LR at the end.
    assert [lr_factor(tc, s, 0.0) for s in (0, 4, 9)] == pytest.approx([0.19, 0.55, 1.0])


def test_weights_and_biases_gets_the_same_scalars(tmp_path, debug_config, tiny_data, monkeypatch):
    """A stand-in `wandb` module records what the trainer logs (the real one needs an account)."""
    import sys
    import types

    calls = {"init": [], "log": [], "finish": 0}

    class Run:
        def log(self, data, step):
            calls["log"].append((step, data))

        def finish(self):
            calls["finish"] += 1
    fake = types.SimpleNamespace(init=lambda **kw: calls["init"].append(kw) or Run(),
                                 Image=lambda image: ("image", image.size))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = _with(debug_config.override(["train.wandb=true", "train.wandb_project=demo"]),
                steps=5, batch_size=8, log_every=5)
    Trainer(cfg, tmp_path / "run", data=tiny_data, progress=False).train()
    assert calls["init"][0]["project"] == "demo" and calls["init"][0]["config"]["train"]["wandb"]
    logged = {k for _, data in calls["log"] for k in data}
    assert {"train/loss", "train/lr", "samples/ema"} <= logged and calls["finish"] == 1
    # The data and velocity statistics of the log steps, beside the loss.
    assert {"train/stats/data_mean", "train/stats/data_std"} <= logged
    assert any(k.startswith("train/stats/velocity_rms_t") for k in logged)
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed: a clear error
    with pytest.raises(ImportError, match="pip install wandb"):
        Trainer(cfg, tmp_path / "other", data=tiny_data, progress=False).train()


def test_a_diverged_run_stops_and_latest_stays_finite(tmp_path, debug_config, tiny_data):
    from safetensors.torch import load_file

    from t2i.checkpoint import resolve_checkpoint
    from t2i.training.loop import Diverged

    cfg = _with(debug_config, steps=20, ckpt_every=5, max_bad_steps=2)
    trainer = Trainer(cfg, tmp_path / "run", data=tiny_data, progress=False)
    loss = trainer.objective.loss
    # From step 7 on the loss is NaN, as after a blow-up.
    trainer.objective.loss = lambda *a: loss(*a) * (float("nan") if trainer.step >= 7 else 1.0)
    with pytest.raises(Diverged, match="not finite for 3 steps in a row"):
        trainer.train()
    assert trainer.step == 9  # steps 7 and 8 skipped (max_bad_steps=2); the third bad one stops it
    ckpt = resolve_checkpoint(tmp_path / "run")
    assert ckpt.name == "step_0000005"  # nothing written after the loss went bad
    assert all(v.isfinite().all() for v in load_file(ckpt / "ema.safetensors").values())
    assert all(p.isfinite().all() for p in trainer.networks.parameters())  # steps were skipped


def test_sigint_saves_a_resumable_checkpoint_and_exits_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "t2i", "-q", "train", "--preset", "debug", "--out", str(run),
           "train.steps=100000", "train.ckpt_every=0", "train.device=cpu"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "tb").exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT at step" in err
    assert "resume with: t2i train --preset debug --out" in err and "--resume latest" in err
    state = json.loads(next((run / "checkpoints").glob("step_*/state.json")).read_text())
    assert state["step"] > 0
    from t2i.cli import main

    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.device=cpu",
                 f"train.steps={state['step'] + 2}", "--resume", "latest"]) == 0


def test_kill_9_at_random_times_always_resumes_to_the_same_end(tmp_path):
    """Five SIGKILLs at random moments (saves every other step, so some land mid-save): every
    restart resumes, and the run ends at the same step with the same weights as one never
    killed."""
    import random
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from t2i.checkpoint import resolve_checkpoint

    def cmd(out, resume):
        return [sys.executable, "-m", "t2i", "-q", "train", "--preset", "debug", "--out", str(out),
                "train.steps=120", "train.ckpt_every=2", "train.keep_last=2", "train.device=cpu",
                "train.log_every=50"] + (["--resume", "latest"] if resume else [])
    rng = random.Random(0)
    killed = tmp_path / "killed"
    for k in range(5):
        resume = (killed / "checkpoints" / "latest").is_file()
        proc = subprocess.Popen(cmd(killed, resume), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not (killed / "tb").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 1.5))
        proc.kill()
        proc.wait()
    assert subprocess.run(cmd(killed, True), capture_output=True).returncode == 0
    straight = tmp_path / "straight"
    assert subprocess.run(cmd(straight, False), capture_output=True).returncode == 0
    a, b = resolve_checkpoint(killed), resolve_checkpoint(straight)
    assert a.name == b.name == "step_0000120"
    assert not list((killed / "checkpoints").glob(".*"))  # no half-written save left behind
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    for name in wb:
        torch.testing.assert_close(wa[name], wb[name], msg=name)


def test_sigterm_during_the_in_training_evaluation_stops_it_at_once(tmp_path):
    """Every step is followed by a long evaluation (500 images a class): SIGTERM must not wait
    for it — Kubernetes and SLURM kill 30 s after SIGTERM."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "t2i", "train", "--preset", "debug", "--out", str(run),
           "train.steps=100000", "train.ckpt_every=0", "train.device=cpu", "train.eval_every=1",
           "train.eval_n_per_class=500", "train.sample_every=0"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "tb").exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    time.sleep(2.0)  # inside the first evaluation
    proc.send_signal(signal.SIGTERM)
    sent = time.perf_counter()
    _, err = proc.communicate(timeout=120)
    assert time.perf_counter() - sent < 10, err
    assert proc.returncode == 143, err
    assert "SIGTERM: stopping now, then saving the last finished step" in err
    assert "interrupted by SIGTERM at step 1" in err and "Traceback" not in err
    state = json.loads(next((run / "checkpoints").glob("step_*/state.json")).read_text())
    assert state["step"] == 1


def test_a_signal_stops_the_teacher_paths_before_the_first_step(tmp_path, debug_config, tiny_data, monkeypatch):
    import os
    import signal
    import time

    from t2i.training.loop import Interrupted

    trainer = Trainer(_with(debug_config, steps=5, ckpt_every=0), tmp_path, data=tiny_data, progress=False)
    started = []

    def long_work():  # stands in for minutes of teacher sampling
        started.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(600):
            time.sleep(0.05)
    monkeypatch.setattr(trainer, "before_run", long_work)
    with pytest.raises(Interrupted, match="SIGTERM at step 0") as e:
        trainer.train()
    assert time.perf_counter() - started[0] < 5
    assert e.value.checkpoint.name == "step_0000000"
