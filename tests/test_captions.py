import pytest
import torch

from t2i.captions import CIFAR10, FASHION_MNIST, MNIST, caption, normalize_prompt
from t2i.data import ImageDataset


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
