import pytest

from t2i.config import Config
from t2i.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = get_preset(name)
    assert cfg.preset == name
    assert Config.from_json(cfg.to_json()) == cfg


def test_unknown_preset():
    with pytest.raises(ValueError, match="fmnist"):
        get_preset("nope")


def test_fmnist_paper_matches_the_recipe():
    cfg = get_preset("fmnist-paper")
    assert (cfg.model.width, cfg.model.depth, cfg.model.num_heads, cfg.model.mlp_ratio) == (384, 12, 6, 4.0)
    assert (cfg.train.batch_size, cfg.train.grad_accum, cfg.train.lr, cfg.train.steps) == (128, 2, 1e-3, 8500)
    assert cfg.train.schedule == "constant" and cfg.train.ema_decay == 0.999
    assert cfg.objective.kind == "x0" and (cfg.objective.beta_a, cfg.objective.beta_b) == (1.0, 2.5)
    assert cfg.sample.steps == 25


def test_flow_matching_preset_table():
    rows = {name: (get_preset(name).train.steps,
                   get_preset(name).train.batch_size * get_preset(name).train.grad_accum)
            for name in ("t2i2m-overfit", "t2i2m-hparam-tuning", "t2i2m-paper", "t2i2m-full-scale")}
    assert rows == {"t2i2m-overfit": (5000, 288), "t2i2m-hparam-tuning": (5000, 288),
                    "t2i2m-paper": (30000, 576), "t2i2m-full-scale": (300000, 576)}
    paper = get_preset("t2i2m-paper")
    assert paper.train.warmup_steps == 1500 and paper.train.lr == 5e-4 and paper.train.min_lr_ratio == 0.1
    assert (paper.model.width, paper.model.depth, paper.model.heads) == (768, 12, 12)
    assert paper.text.encoder.endswith("t5-small") and paper.text.max_length == 128


def test_fmnist_tiny_matches_the_efficient_design():
    c = get_preset("fmnist-tiny")
    assert (c.model.width, c.model.depth, c.model.heads, c.model.patch_size) == (128, 3, 4, 2)
    assert c.model.width * c.model.mlp_ratio == 256 and c.model.attention == "linear"
    assert c.vae.resolution == 16 and not c.vae.name and c.objective.kind == "x0"
    assert (c.train.batch_size, c.train.lr, c.train.weight_decay, c.train.schedule) == (
        128, 3e-4, 0.05, "cosine_restarts")
    assert c.sample.steps == 10
