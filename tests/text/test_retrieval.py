import pytest
import torch
from torch import nn

from t2i.text.retrieval import CaptionIndex, grounding_problem, head_phrase


def test_a_training_caption_grounds_on_itself(text_pipe, word_bert):
    pipe = text_pipe(word_bert, pooling="sentence")
    text, index = pipe.networks["text"], pipe.caption_index()
    assert pipe.caption_index() is index  # embedded once
    tokens, mask = index.ground(["a photo of a sneaker"], k=1, temperature=0.05)
    own, own_mask = text.encode(["a photo of a sneaker"])
    assert tokens.shape == own.shape == (1, 1, text.dim) and mask.tolist() == own_mask.tolist() == [[True]]
    torch.testing.assert_close(tokens, own, atol=1e-5, rtol=0)


def test_grounding_is_the_softmax_weighted_mean_of_the_nearest_captions(text_pipe, word_bert):
    index = text_pipe(word_bert, pooling="sentence").caption_index()
    prompt, k, temperature = "a red sneaker for the evening", 3, 0.2
    sims = index.similarities([prompt])[0]
    top = sims.argsort(descending=True)[:k]
    weights = torch.softmax(sims[top] / temperature, 0)
    expected = nn.functional.normalize((weights[:, None] * index.embeddings[top]).sum(0), dim=0)
    tokens, _ = index.ground([prompt], k, temperature)
    torch.testing.assert_close(tokens[0, 0] / index.text.dim ** 0.5, expected, atol=1e-5, rtol=0)
    # a cold softmax is the nearest caption alone; k beyond the caption count is all of them
    cold, _ = index.ground([prompt], k, 1e-4)
    torch.testing.assert_close(cold[0, 0] / index.text.dim ** 0.5, index.embeddings[top[0]], atol=1e-5, rtol=0)
    assert index.ground([prompt], 10 ** 6, temperature)[0].shape == tokens.shape


def test_sampling_grounded_on_one_caption_draws_what_the_caption_draws(text_pipe, word_bert):
    pipe = text_pipe(word_bert, pooling="sentence")
    assert pipe.sampling()["retrieve"] == 0  # off unless the config or the call says so
    own = pipe(["a photo of a sneaker"], steps=2, seed=3)
    grounded = pipe(["a photo of a sneaker"], steps=2, seed=3, retrieve=1)
    torch.testing.assert_close(grounded, own, atol=1e-4, rtol=0)
    other = pipe(["a red sneaker for the evening"], steps=2, seed=3, retrieve=2)
    assert other.shape == own.shape and torch.isfinite(other).all()


def test_grounding_says_what_it_needs(text_pipe, word_bert):
    tokens = text_pipe(word_bert)  # text.pooling=tokens
    assert "text.pooling=sentence" in grounding_problem(tokens.networks["text"], tokens.classes)
    with pytest.raises(ValueError, match="text.pooling=sentence"):
        tokens.sampling(retrieve=4)
    with pytest.raises(ValueError, match="pretrained text encoder"):
        text_pipe("onehot").sampling(retrieve=4)
    with pytest.raises(ValueError, match="class-labelled"):
        CaptionIndex(tokens.networks["text"], None)
    with pytest.raises(ValueError, match="integer >= 0"):
        text_pipe(word_bert, pooling="sentence").sampling(retrieve=-1)



def test_a_misspelt_caption_grounds_like_the_caption(text_pipe, word_bert):
    pipe = text_pipe(word_bert, pooling="sentence")
    index = pipe.caption_index()
    assert index.read("a photo of a sneeker") == ("a photo of a sneaker", None, [])
    spelled, _ = index.ground(["a photo of a sneeker"], k=1, temperature=0.05)
    own, _ = pipe.networks["text"].encode(["a photo of a sneaker"])
    torch.testing.assert_close(spelled, own, atol=1e-5, rtol=0)
    assert index.reading() == "dictionary, spelled, head phrases"
    index.spelling = index.dictionary = False  # looked up as typed: the unknown word moves the prompt elsewhere
    assert index.reading() == "head phrases"
    assert index.read("a photo of a sneeker") == ("a photo of a sneeker", None, [])
    assert not torch.allclose(index.similarities(["a photo of a sneeker"]),
                              index.similarities(["a photo of a sneaker"]), atol=1e-3)


@pytest.mark.parametrize("prompt, head", [
    ("dress pants for a wedding", "dress pants"),
    ("a bag to carry to the beach", "a bag"),
    ("A smart shirt With a collar", "A smart shirt"),
    ("a pair of trainers for the gym", "a pair of trainers"),
    ("a photo of a sneaker", None),  # no modifier: the whole prompt is the head
    ("something to wear on your feet", None),  # says nothing about what the thing is
    ("something light to wear on a hot day", None),  # a pronoun and its adjective name nothing
    ("a pair of with straps", None),
    ("a qwxz coat for winter", None),  # a word it does not know: the head would be a guess
])
def test_the_head_phrase_is_what_comes_before_the_first_modifier(prompt, head):
    assert head_phrase(prompt, knows=lambda word: word != "qwxz") == head


def test_a_head_phrase_counts_as_much_as_the_whole_prompt(text_pipe, word_bert):
    index = text_pipe(word_bert, pooling="sentence").caption_index()
    prompt = "a red sneaker for the evening"
    assert index.read(prompt) == (prompt, "a red sneaker", [])
    both = index.similarities([prompt])
    index.heads = False
    whole, head = index.similarities([prompt, "a red sneaker"])
    torch.testing.assert_close(both[0], (whole + head) / 2, atol=1e-6, rtol=0)
    assert not torch.allclose(whole, head, atol=1e-3)
