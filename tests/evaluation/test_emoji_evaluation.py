import json

import pytest
import torch

from t2i.data.emoji import HELDOUT
from t2i.evaluation.emoji import (
    EmojiReference,
    labels,
    load_emoji_classifier,
    prompt_of,
    prompt_sets,
    real_emoji,
    train_emoji_classifier,
)


@pytest.fixture(autouse=True)
def _font(emoji_font):
    """Every test here renders the emoji."""


def test_shipped_classifier_reaches_its_recorded_accuracy():
    model, meta = load_emoji_classifier()
    images, rows = real_emoji()
    groups, _ = labels()
    test = torch.arange(len(rows)) % 5 == 0  # the split it was trained without
    with torch.no_grad():
        predicted = model(images[test])[0].argmax(1)
    truth = torch.tensor([groups.index(r["group"]) for r in rows])[test]
    acc = (predicted == truth).double().mean().item()
    assert meta["test_accuracy"] > 0.6 and abs(acc - meta["test_accuracy"]) < 0.02
    assert meta["groups"] == groups


def test_training_the_classifier_is_deterministic(tmp_path):
    a = train_emoji_classifier(tmp_path / "a", epochs=1, progress=False)
    b = train_emoji_classifier(tmp_path / "b", epochs=1, progress=False)
    assert a == b
    assert json.loads((tmp_path / "a" / "emoji_classifier.json").read_text())["test_images"] == 322


def test_prompt_sets_split_seen_and_held_out_compositions():
    sets = prompt_sets()
    assert sorted(sets["heldout"]) == sorted(HELDOUT)
    assert not set(sets["seen"]) & set(HELDOUT)
    assert {"red heart", "blue heart", "green circle"} <= set(sets["seen"])


def test_real_emoji_score_near_the_top_and_noise_near_the_bottom():
    ref = EmojiReference(n=2)
    floor = ref.floor["seen"]
    assert floor["group_accuracy"] > 0.8 and floor["retrieval"] > 0.8 and floor["colour_accuracy"] > 0.9
    assert ref.floor["heldout"]["colour_accuracy"] == 1.0
    names = ref.sets["heldout"]
    noise = torch.rand(2 * len(names), 3, 32, 32) * 2 - 1
    scores = ref.score(noise, names, 2)
    assert scores["colour_accuracy"] < 0.5 and scores["fd"] > 10 * ref.floor["seen"]["fd"]
    assert set(scores["per_prompt"]) == {prompt_of(n) for n in names} and "an orange book" in scores["per_prompt"]
