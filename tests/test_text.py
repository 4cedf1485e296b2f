import pytest
import torch

from t2i.data import FASHION_MNIST_CLASSES, FASHION_MNIST_SYNONYMS
from t2i.text import ClassTextEncoder, drop_condition


def enc(kind="onehot"):
    return ClassTextEncoder(kind, FASHION_MNIST_CLASSES, FASHION_MNIST_SYNONYMS, dim=16)


@pytest.mark.parametrize("prompt, label", [
    ("a bag", 8), ("Bag", 8), ("A photo of an ankle boot.", 9), ("sneakers", 7),
    ("T-shirt/top", 0), ("  a picture of a   PULLOVER ", 2), ("jeans", 1), ("an image of a coat", 4),
])
def test_prompts_map_to_classes(prompt, label):
    assert enc().classes_of([prompt]).tolist() == [label]


def test_unknown_prompt_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        enc().encode(["a cat"])
    assert "a cat" in str(err.value) and "Ankle boot" in str(err.value)


def test_onehot_tokens_and_null():
    e = enc()
    tokens, mask = e.encode(["a dress", "a bag"])
    assert tokens.shape == (2, 1, 10) and mask.all()
    assert tokens[0, 0].argmax() == 3 and tokens[0, 0].sum() == 1
    null, null_mask = e.null(2)
    assert torch.count_nonzero(null) == 0 and null_mask.all()
    assert len(list(e.parameters())) == 0


def test_learned_tokens_and_null():
    e = enc("learned")
    tokens, _ = e.encode_labels(torch.tensor([0, 9]))
    assert tokens.shape == (2, 1, 16) and tokens.requires_grad
    null, _ = e.null(1)
    torch.testing.assert_close(null[0, 0], e.embedding.weight[10])


def test_condition_is_dropped_per_sample():
    tokens = torch.ones(4, 1, 3)
    mask = torch.ones(4, 1, dtype=torch.bool)
    null = torch.zeros(4, 1, 3)
    drop = torch.tensor([True, False, True, False])
    out, out_mask = drop_condition(tokens, mask, null, mask, drop)
    assert out[:, 0, 0].tolist() == [0, 1, 0, 1]
    assert out_mask.all()
