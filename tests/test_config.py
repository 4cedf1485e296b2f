import pytest

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
