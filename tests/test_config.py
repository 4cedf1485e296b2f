import pytest

from t2i.config import Config
from t2i.fields import ConfigError
from t2i.presets import get_preset


def test_overrides_are_typed():
    cfg = get_preset("fmnist").override(["model.depth=8", "train.lr=5e-4", "train.compile=true",
                                         "text.encoder=learned", "data.data_dir=some/dir"])
    assert cfg.model.depth == 8 and isinstance(cfg.model.depth, int)
    assert cfg.train.lr == 5e-4 and cfg.train.compile is True
    assert cfg.text.encoder == "learned" and cfg.data.data_dir == "some/dir"
    assert get_preset("fmnist").override(["data.data_dir=none"]).data.data_dir is None


@pytest.mark.parametrize("bad, match", [
    ("model.depht=3", "unknown field model.depht"),
    ("modle.depth=3", "unknown config section"),
    ("model.depth=three", "not a valid int"),
    ("train.compile=maybe", "not a valid bool"),
    ("depth=3", "section.field=value"),
])
def test_bad_overrides_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        get_preset("fmnist").override([bad])


def test_config_names_are_the_registries():
    from t2i import sections as config
    from t2i.data import DATASETS
    from t2i.flow.objectives import OBJECTIVES, PAIRINGS
    from t2i.flow.samplers import SAMPLERS
    from t2i.models import BACKBONES
    from t2i.text.encoders import POOLINGS
    from t2i.training.loop import SCHEDULES
    from t2i.utils.runtime import PRECISIONS

    assert set(config.BACKBONE_NAMES) == set(BACKBONES)
    assert set(config.OBJECTIVE_NAMES) == set(OBJECTIVES)
    assert set(config.PAIRING_NAMES) == set(PAIRINGS)
    assert set(config.SAMPLER_NAMES) == set(SAMPLERS)
    assert set(config.DATASET_NAMES) == set(DATASETS)
    assert set(config.SCHEDULE_NAMES) == set(SCHEDULES)
    assert set(config.PRECISIONS) == {"auto", *PRECISIONS}
    assert set(config.POOLING_NAMES) == set(POOLINGS)


@pytest.mark.parametrize("override, match", [
    ("model.heads=-4", "model.heads=-4 is not allowed"), ("model.heads=5", "divides model.width"),
    ("model.patch_size=0", "from 1 to 256"), ("model.depth=-1", "from 1 to 1,024"),
    ("model.width=100000", "from 1 to 16,384"), ("model.mlp_ratio=0", r"\(0, 64\]"),
    ("model.backbone=vit", "one of dit, unet"), ("model.unet_channels=8,x", "comma-separated"),
    ("text.cond_drop=1.5", r"\[0, 1\]"), ("data.image_size=0", "from 1 to 4,096"), ("data.image_size=100000", "from 1 to 4,096"), ("data.channels=2", "one of 1, 3"),
    ("data.dataset=imagenet", "fashion-mnist"), ("data.recolour=true", "only for data.dataset=emoji"),
    ("vae.kl_weight=-1", ">= 0"),
    ("objective.kind=edm", "one of eps"), ("objective.s_max=0.001", "s_min"),
    ("train.steps=-5", ">= 1"), ("train.steps=0", ">= 1"), ("train.grad_accum=0", ">= 1"),
    ("train.ema_decay=5", r"\[0, 1\]"), ("train.keep_last=-1", "0 keeps every"),
    ("train.lr=nan", "finite"), ("train.lr=0", "> 0"), ("train.precision=fp8", "one of auto"),
    ("train.device=tpu", "cuda"), ("train.max_bad_steps=-1", ">= 0"),
    ("sample.steps=0", ">= 1"), ("sample.sampler=dpm", "one of ddim"), ("sample.cfg=inf", "finite"),
])
def test_every_field_kind_is_range_checked_with_its_name(override, match):
    from t2i.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        Config().override([override])


def test_checkpoint_config_goes_through_the_same_typed_parse():
    from t2i.config import ConfigError

    with pytest.raises(ConfigError, match=r"model.depth='2' is a str, expected int"):
        Config.from_dict({"model": {"depth": "2"}})
    with pytest.raises(ConfigError, match="train.compile=1 is a int, expected bool"):
        Config.from_dict({"train": {"compile": 1}})
    with pytest.raises(ConfigError, match="must be an object"):
        Config.from_dict({"model": 3})
    with pytest.raises(ConfigError, match="not JSON"):
        Config.from_json("{garbage")
    assert Config.from_dict({"train": {"lr": 1}}).train.lr == 1.0  # an int is a valid float


def test_overrides_are_checked_once_after_all_apply():
    emoji = get_preset("emoji")
    for order in (["data.dataset=folder", "data.recolour=false"], ["data.recolour=false", "data.dataset=folder"]):
        cfg = emoji.override(order)
        assert (cfg.data.dataset, cfg.data.recolour) == ("folder", False)
    with pytest.raises(ConfigError, match="data.recolour=True is not allowed"):
        emoji.override(["data.dataset=folder"])  # the rule still holds of the result
    assert emoji.override(["train.lr=1", "train.lr=2"]).train.lr == 2.0  # the last one wins
