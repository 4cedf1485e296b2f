import importlib.util
import json
from pathlib import Path

import pytest
import torch

from t2i.data import ImageDataset
from t2i.text.captions import CIFAR10, FASHION_MNIST, MNIST, caption, normalize_prompt

ROOT = Path(__file__).resolve().parents[2]


def test_templates_synonyms_and_articles():
    caps = FASHION_MNIST.training_captions()
    assert "a photo of a sneaker" in caps[7] and "running shoes" in caps[7]
    assert "a picture of an ankle boot" in caps[9] and "an image of a t-shirt/top" in caps[0]
    assert caption("Apple", "{a} {name}") == "an apple"
    assert "the digit 7" in MNIST.training_captions()[7] and "seven" in MNIST.training_captions()[7]
    assert "a photo of a cat" in CIFAR10.training_captions()[3]
    assert all(len(c) == len(set(c)) for c in caps)  # no caption twice in a class


@pytest.mark.parametrize("classes", [FASHION_MNIST, MNIST, CIFAR10], ids=["fmnist", "mnist", "cifar10"])
def test_heldout_paraphrases_never_appear_in_training(classes):
    assert len(classes.heldout) == len(classes.names) and all(classes.heldout)
    training = {normalize_prompt(c) for caps in classes.training_captions() for c in caps}
    heldout = [normalize_prompt(p) for ps in classes.heldout for p in ps]
    assert not training & set(heldout)
    assert len(set(heldout)) == len(heldout)
    assert set(classes.all_captions()) >= set(classes.names) | {p for ps in classes.heldout for p in ps}


def test_every_training_caption_names_its_own_class():
    lookup = FASHION_MNIST.lookup()
    for label, caps in enumerate(FASHION_MNIST.training_captions()):
        assert {lookup[normalize_prompt(c)] for c in caps} == {label}


def test_captions_are_drawn_per_example_from_the_uniform_numbers():
    labels = torch.tensor([7, 7, 9])
    data = ImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), labels, FASHION_MNIST)
    caps = FASHION_MNIST.training_captions()
    idx = torch.arange(3)
    assert data.captions_of(idx, torch.tensor([0.0, 0.9999, 0.5])) == [
        caps[7][0], caps[7][-1], caps[9][len(caps[9]) // 2]]
    drawn = {c for _ in range(50) for c in data.captions_of(idx[:1], torch.rand(1))}
    assert len(drawn) > 10 and drawn <= set(caps[7])
    captioned = ImageDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.full((2,), -1),
                             captions=[["one"], ["two", "deux"]])
    assert captioned.captions_of(torch.tensor([1, 0]), torch.tensor([0.7, 0.7])) == ["deux", "one"]
    assert captioned.sample_prompts() == ["one", "two"]


def test_all_captions_is_the_distinct_set_a_dataset_trains_on():
    captioned = ImageDataset(torch.zeros(3, 3, 4, 4, dtype=torch.uint8), torch.full((3,), -1),
                             captions=[["one"], ["two", "one"], ["three", "two"]])
    assert captioned.all_captions() == ["one", "two", "three"]
    labelled = ImageDataset(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, dtype=torch.long), FASHION_MNIST)
    assert labelled.all_captions() == FASHION_MNIST.all_captions()


def _words(text):
    return normalize_prompt(text).replace(",", " ").split()


def _inside(part, whole):
    return any(whole[i:i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def test_paraphrases_are_fifteen_distinct_unseen_prompts_per_class():
    para = FASHION_MNIST.paraphrases
    assert [len(p) for p in para] == [15] * 10
    flat = [normalize_prompt(p) for ps in para for p in ps]
    assert len(set(flat)) == 150 and not set(flat) & {normalize_prompt(p) for ps in FASHION_MNIST.heldout for p in ps}
    assert set(FASHION_MNIST.all_captions()) >= {p for ps in para for p in ps}


def test_no_template_caption_leaks_into_a_heldout_prompt():
    """No held-out prompt is a template caption, none contains one of three or more words, and
    none (bar its article) is inside one. (The caption bank may: WordNet has "anorak", and the
    paraphrases are its development set, issue 35.)"""
    classes = FASHION_MNIST
    heldout = [_words(p) for ps in (*classes.heldout, *classes.paraphrases) for p in ps]
    cores = [h[1:] if h[0] in ("a", "an") else h for h in heldout]
    for caps in classes.training_captions():
        for c in caps:
            w = _words(c)
            assert w not in heldout, c
            assert not (len(w) >= 3 and any(_inside(w, h) for h in heldout)), c
            assert not any(_inside(h, w) for h in cores), c


def test_the_rare_words_are_six_distinct_new_prompts_per_class():
    rare = FASHION_MNIST.rare
    assert [len(r) for r in rare] == [6] * 10
    flat = [normalize_prompt(p) for ps in rare for p in ps]
    others = {normalize_prompt(p) for ps in (*FASHION_MNIST.heldout, *FASHION_MNIST.paraphrases) for p in ps}
    assert len(set(flat)) == 60 and not set(flat) & others
    assert set(FASHION_MNIST.all_captions()) >= {p for ps in rare for p in ps}


def test_the_bank_adds_hundreds_of_captions_per_class_after_the_templates():
    plain, banked = FASHION_MNIST.training_captions(), FASHION_MNIST.with_bank().training_captions()
    for k, (p, b) in enumerate(zip(plain, banked)):
        assert b[:len(p)] == p and len(b) >= 100, FASHION_MNIST.names[k]
        assert len(b) == len(set(b))
    assert any("a shoe consisting of a sole fastened by straps to the foot" in c for c in banked[5])
    owners = {}
    for k, caps in enumerate(banked):
        for c in caps:
            owners.setdefault(normalize_prompt(c), set()).add(k)
    assert all(len(v) == 1 for v in owners.values())  # no caption teaches two classes
    with pytest.raises(ValueError, match="no caption bank"):
        MNIST.with_bank()


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="needs wordnet-base")
def test_the_shipped_bank_is_what_the_script_makes():
    spec = importlib.util.spec_from_file_location("caption_bank", ROOT / "scripts" / "caption_bank.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = json.loads((ROOT / "t2i" / "assets" / "fashion-mnist-captions.json").read_text())
    assert module.build_bank(module.WordNet()) == shipped["classes"]


def test_template_share_draws_that_share_of_captions_from_the_templates():
    labels = torch.full((4000,), 7)
    classes = FASHION_MNIST.with_bank()
    templates = set(FASHION_MNIST.training_captions()[7])
    everything = classes.training_captions()[7]
    u = torch.rand(4000, generator=torch.Generator().manual_seed(0))
    for share in (0.0, 0.5, 1.0):
        data = ImageDataset(torch.zeros(4000, 1, 4, 4, dtype=torch.uint8), labels, classes, template_share=share)
        drawn = data.captions_of(torch.arange(4000), u)
        expected = share + (1 - share) * len(templates) / len(everything)
        assert abs(sum(c in templates for c in drawn) / 4000 - expected) < 0.03
        assert set(drawn) <= set(everything) and (share == 1.0 or len(set(drawn) - templates) > 100)
