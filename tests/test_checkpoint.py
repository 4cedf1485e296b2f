import json

import pytest
import torch

from t2i.checkpoint import (
    flatten_optimizer,
    load_config,
    load_training_state,
    load_weights,
    resolve_checkpoint,
    save_checkpoint,
    unflatten_optimizer,
)
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


def test_resolve_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_checkpoint(tmp_path)


def test_checkpoints_from_before_the_backbone_rename_load(tmp_path):
    from safetensors.torch import save_file

    from t2i.checkpoint import load_weights

    save_file({"dit.out.weight": torch.ones(2), "text.embedding.weight": torch.zeros(1)},
              str(tmp_path / "ema.safetensors"))
    assert set(load_weights(tmp_path)) == {"backbone.out.weight", "text.embedding.weight"}
