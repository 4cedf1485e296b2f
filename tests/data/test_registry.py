import pytest

from t2i.data import (
    DATASETS,
    DataError,
    dataset_info,
    dataset_spec,
    is_labelled,
    known_captions,
    load_dataset,
)
from t2i.sections import DataConfig


def test_every_dataset_answers_shape_labels_and_evaluation_without_loading():
    expected = {"fashion-mnist": ((1, 28, 28), True, True), "mnist": ((1, 28, 28), True, False),
                "cifar10": ((3, 32, 32), True, False), "folder": ((3, 64, 64), False, False),
                "hf": ((3, 64, 64), False, False), "emoji": ((3, 64, 64), False, True),
                "shapes": ((3, 64, 64), False, True)}
    assert set(DATASETS) == set(expected)
    for name, (shape, labelled, evaluable) in expected.items():
        cfg = DataConfig(dataset=name)
        assert dataset_info(cfg)["shape"] == shape
        assert is_labelled(cfg) is labelled
        assert (dataset_info(cfg)["classes"] is not None) is labelled
        assert bool(dataset_spec(cfg).classifier) is evaluable
    assert dataset_info(DataConfig(dataset="folder", channels=1, image_size=32))["shape"] == (1, 32, 32)


def test_unknown_dataset_and_missing_split_are_clear_errors():
    with pytest.raises(ValueError, match="fashion-mnist"):
        dataset_info(DataConfig(dataset="imagenet"))
    with pytest.raises(DataError, match="no test split"):
        load_dataset(DataConfig(dataset="folder"), "test")
    with pytest.raises(ValueError, match="split"):
        load_dataset(DataConfig(), "validation")
    with pytest.raises(DataError, match="data.holdout"):
        load_dataset(DataConfig(), "val")


def test_holdout_takes_the_last_images_out_of_training(tmp_path):
    train = load_dataset(DataConfig(subset=100, holdout=10))
    val = load_dataset(DataConfig(subset=100, holdout=10), "val")
    every = load_dataset(DataConfig(subset=100))
    assert len(train) == 90 and len(val) == 10
    assert (train.images == every.images[:90]).all() and (val.images == every.images[90:]).all()
    assert len(load_dataset(DataConfig(subset=100, holdout=10), "test")) == 10_000
    with pytest.raises(DataError, match="nothing to train on"):
        load_dataset(DataConfig(subset=10, holdout=10))


def test_the_caption_bank_is_a_labelled_dataset_option():
    bank = DataConfig(captions="bank")
    classes = dataset_info(bank)["classes"]
    assert classes.bank and len(classes.training_captions()[5]) > 100
    assert dataset_info(DataConfig())["classes"].bank == ()
    with pytest.raises(ValueError, match="class-labelled"):
        dataset_info(DataConfig(dataset="folder", captions="bank"))
    with pytest.raises(ValueError, match="no caption bank"):
        dataset_info(DataConfig(dataset="mnist", captions="bank"))


def test_known_captions_are_the_words_a_model_knows_without_its_images():
    captions, labels = known_captions(DataConfig(dataset="fashion-mnist", captions="bank"))
    assert len(captions) == len(labels) > 3000 and "a hoodie" in captions
    assert labels[captions.index("a hoodie")] == 2  # Pullover
    shapes, none = known_captions(DataConfig(dataset="shapes"))
    words = {w for c in shapes for w in c.split()}
    assert none is None and {"circle", "purple", "above", "left", "three", "crosses"} <= words
    emoji, _ = known_captions(DataConfig(dataset="emoji"))
    assert "a cat" in emoji and "green heart" not in emoji  # a held-out emoji is never trained on
    assert known_captions(DataConfig(dataset="folder")) is None  # its captions are in its files
