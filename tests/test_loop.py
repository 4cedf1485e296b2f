import dataclasses

import pytest

from t2i.data import load_fashion_mnist
from t2i.loop import lr_factor
from t2i.presets import get_preset
from t2i.train import Trainer


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
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed: a clear error
    with pytest.raises(ImportError, match="pip install wandb"):
        Trainer(cfg, tmp_path / "other", data=tiny_data, progress=False).train()
