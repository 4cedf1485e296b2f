import json

import pytest
import torch

from t2i.checkpoint import (
    CheckpointError,
    flatten_optimizer,
    load_config,
    load_training_state,
    load_weights,
    resolve_checkpoint,
    save_checkpoint,
    unflatten_optimizer,
)
from t2i.config import ConfigError
from t2i.presets import get_preset


def _optimizer():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_optimizer_state_round_trips_without_pickle():
    model, opt = _optimizer()
    tensors, meta = flatten_optimizer(opt.state_dict())
    json.dumps(meta)  # metadata is plain JSON
    restored = torch.optim.AdamW(model.parameters(), lr=5.0)
    restored.load_state_dict(unflatten_optimizer(tensors, json.loads(json.dumps(meta))))
    assert restored.param_groups[0]["lr"] == 1e-3
    for p in model.parameters():
        for k in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(restored.state[p][k], opt.state[p][k])


def test_save_load_keep_last_and_latest(tmp_path):
    cfg = get_preset("debug")
    weights = {"w": torch.randn(2, 2)}
    for step in (1, 2, 3):
        path = save_checkpoint(tmp_path, step, cfg, weights, {"w": weights["w"] * step},
                               {"rng": torch.arange(3)}, {"step": step}, keep_last=2)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_0000002", "step_0000003"]
    assert resolve_checkpoint(tmp_path) == path == resolve_checkpoint(path)
    assert load_config(path) == cfg
    torch.testing.assert_close(load_weights(path, "ema")["w"], weights["w"] * 3)
    state, tensors = load_training_state(path)
    assert state == {"step": 3} and tensors["rng"].tolist() == [0, 1, 2]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_keep_every_keeps_periodic_checkpoints_beside_the_newest(tmp_path):
    cfg = get_preset("debug")
    for step in range(100, 800, 100):
        save_checkpoint(tmp_path, step, cfg, {}, {"w": torch.ones(1)}, {}, {"step": step},
                        keep_last=2, keep_every=300)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert kept == ["step_0000300", "step_0000600", "step_0000700"]


def test_keep_every_must_fall_on_checkpoint_steps():
    with pytest.raises(ConfigError, match="multiple of train.ckpt_every"):
        get_preset("debug").override(["train.ckpt_every=10", "train.keep_every=25"])
    assert get_preset("debug").override(["train.keep_every=20"]).train.keep_every == 20


def test_resolve_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_checkpoint(tmp_path)


def test_checkpoints_from_before_the_backbone_rename_load(tmp_path):
    from safetensors.torch import save_file

    from t2i.checkpoint import load_weights

    save_file({"dit.out.weight": torch.ones(2), "text.embedding.weight": torch.zeros(1)},
              str(tmp_path / "ema.safetensors"))
    assert set(load_weights(tmp_path)) == {"backbone.out.weight", "text.embedding.weight"}


def _three_checkpoints(tmp_path, keep_last=0):
    cfg = get_preset("debug")
    return [save_checkpoint(tmp_path, step, cfg, {"w": torch.full((4,), float(step))},
                            {"w": torch.full((4,), float(step))}, {"rng": torch.arange(3)},
                            {"step": step, "elapsed": 1.0}, keep_last=keep_last)
            for step in (1, 2, 3)]


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, caplog):
    import logging

    from t2i.checkpoint import CheckpointError

    first, second, third = _three_checkpoints(tmp_path)
    model = third / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-7])  # truncated by a full disk
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint(tmp_path) == second
    assert "step_0000003" in caplog.text and "model.safetensors is damaged" in caplog.text
    with pytest.raises(CheckpointError, match="model.safetensors is damaged"):
        resolve_checkpoint(third)  # named directly: refused, not silently replaced
    (second / "state.json").write_text("{garbage")
    assert resolve_checkpoint(tmp_path) == first
    (first / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"step_0000003: model.safetensors is damaged.*"
                                              r"step_0000002: state.json is damaged.*"
                                              r"step_0000001: no config.json"):
        resolve_checkpoint(tmp_path)


def test_checkpoints_without_a_manifest_are_verified_by_parsing(tmp_path):
    from t2i.checkpoint import CheckpointError

    _, _, third = _three_checkpoints(tmp_path)
    (third / "manifest.json").unlink()  # as written by t2i 0.1.0
    assert resolve_checkpoint(third) == third
    (third / "state.json").write_text("not json")
    with pytest.raises(CheckpointError, match="state.json is not valid JSON"):
        resolve_checkpoint(third)
    (third / "config.json").write_text('{"model": {"depth": "2"}}')
    with pytest.raises(CheckpointError, match=r"config.json: model.depth='2' is a str"):
        load_config(third)


def test_keep_last_never_deletes_the_new_checkpoint_and_refuses_negatives(tmp_path):
    *_, third = _three_checkpoints(tmp_path, keep_last=1)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_0000003"]
    assert resolve_checkpoint(tmp_path) == third
    with pytest.raises(ValueError, match="keep_last"):
        save_checkpoint(tmp_path, 4, get_preset("debug"), {}, {}, {}, {"step": 4}, keep_last=-1)
    assert resolve_checkpoint(tmp_path) == third


def test_stale_part_folders_are_removed(tmp_path):
    from t2i.checkpoint import remove_stale_parts

    _three_checkpoints(tmp_path)
    stale = tmp_path / "checkpoints" / ".step_0000004.part-abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    assert remove_stale_parts(tmp_path) == [stale] and not stale.exists()
    assert len(list((tmp_path / "checkpoints").glob("step_*"))) == 3


def test_non_finite_weights_are_refused(tmp_path):
    from t2i.checkpoint import CheckpointError

    cfg = get_preset("debug")
    path = save_checkpoint(tmp_path, 1, cfg, {"w": torch.tensor([1.0, float("nan")])},
                           {"w": torch.tensor([1.0, float("nan")])}, {}, {"step": 1})
    with pytest.raises(CheckpointError, match="non-finite weights"):
        load_weights(path)


def test_load_into_names_what_is_missing_unless_allowed(tmp_path):
    from safetensors.torch import save_file

    from t2i.checkpoint import CheckpointError, load_into

    save_file({"a.weight": torch.zeros(2, 2)}, str(tmp_path / "ema.safetensors"))
    module = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 2, bias=False),
                                  "new": torch.nn.Linear(2, 2, bias=False)})
    with pytest.raises(CheckpointError, match=r"does not fit this model: missing keys \['new.weight'\]"):
        load_into(module, tmp_path, "ema")
    load_into(module, tmp_path, "ema", allow_missing=("new.",))
    assert torch.count_nonzero(module["a"].weight) == 0


def test_the_shipped_model_samples_in_a_fresh_offline_process_with_no_cache(tmp_path):
    import os
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from t2i.checkpoint import SHIPPED, checkpoint_problems, shipped_models
    from t2i.evaluation.classifier import features_and_predictions, load_classifier

    assert "fmnist-text" in shipped_models()
    folder = SHIPPED / "fmnist-text"
    assert checkpoint_problems(folder) == [] and sum(f.stat().st_size for f in folder.iterdir()) <= 16 * 2**20
    assert "t2i train --preset fmnist-text" in (folder / "README.md").read_text()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "XDG_CACHE_HOME": str(tmp_path / "empty-cache"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "t2i", "-q", "sample", "--checkpoint", "fmnist-text",
                           "--prompt", "a leather bag", "--num-per-prompt", "6", "--out", "out"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    images = torch.stack([torch.from_numpy(np.asarray(Image.open(tmp_path / "out" / f"000_{k:03d}.png"),
                                                      dtype=np.float32))[None] / 127.5 - 1 for k in range(6)])
    _, predicted = features_and_predictions(load_classifier()[0], images)
    assert (predicted == 8).sum() >= 5  # the classifier sees bags


def _hostile(tmp_path, name, change):
    """A copy of the shipped model with one file changed and its manifest rewritten to match
    (as someone handing over a crafted checkpoint would)."""
    import shutil

    from t2i.checkpoint import SHIPPED, _write_manifest

    folder = tmp_path / name
    shutil.copytree(SHIPPED / "fmnist-text", folder)
    change(folder)
    (folder / "manifest.json").unlink()
    _write_manifest(folder)
    return folder


def _config_with(**model):
    def change(folder):
        config = json.loads((folder / "config.json").read_text())
        config["model"].update(model)
        (folder / "config.json").write_text(json.dumps(config))
    return change


def _safetensors_header(header: dict):
    def change(folder):
        import struct
        raw = json.dumps(header).encode()
        (folder / "ema.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(16))
    return change


@pytest.mark.parametrize("name, change, message", [
    ("header-length", lambda f: (f / "ema.safetensors").write_bytes((2**60).to_bytes(8, "little") + b"{}"),
     "ema.safetensors is damaged .*header too large"),
    ("header-shape", _safetensors_header({"w": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 16]}}),
     "ema.safetensors is damaged"),
    ("header-offsets", _safetensors_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**62]}}),
     "ema.safetensors is damaged"),
    ("width-type", _config_with(width="wide"), "model.width='wide' is a str"),
    ("width-absurd", _config_with(width=2**30), "model.width=1073741824 is not allowed"),
    ("bigger-than-its-weights", _config_with(width=4096, depth=512, heads=0),
     "describes a backbone of [0-9,]+ parameters, but its weights hold 2,635,441"),
    ("huge-json", lambda f: (f / "config.json").write_text(" " * (17 << 20) + "{}"), "17,825,794 bytes"),
    ("deep-json", lambda f: (f / "config.json").write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
])
def test_hostile_checkpoints_are_refused_quickly_without_a_large_allocation(tmp_path, name, change, message):
    import resource
    import time

    from t2i.pipeline import Pipeline

    folder = _hostile(tmp_path, name, change)
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=message):
        Pipeline.from_pretrained(folder, device="cpu")
    assert time.perf_counter() - start < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1 << 20  # KiB: < 1 GiB more
