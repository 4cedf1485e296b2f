import pytest
import torch

from t2i.models.dit import DiT
from t2i.sections import ModelConfig, TextConfig
from t2i.text.captions import FASHION_MNIST
from t2i.text.encoders import (
    ClassTextEncoder,
    NoText,
    PretrainedTextEncoder,
    build_text_encoder,
    drop_condition,
    pad_tokens,
    perturb_tokens,
    sentence_embedding,
)


def enc(kind="onehot"):
    return ClassTextEncoder(kind, FASHION_MNIST, dim=16)


@pytest.mark.parametrize("prompt, label", [
    ("a bag", 8), ("Bag", 8), ("A photo of an ankle boot.", 9), ("sneakers", 7),
    ("T-shirt/top", 0), ("  a picture of a   PULLOVER ", 2), ("jeans", 1), ("an image of a coat", 4),
])
def test_prompts_map_to_classes(prompt, label):
    assert enc().tokenize([prompt]).tolist() == [label]


def test_unknown_prompt_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        enc().encode(["a cat"])
    assert "a cat" in str(err.value) and "Ankle boot" in str(err.value)
    with pytest.raises(ValueError, match="pretrained"):  # a held-out paraphrase is free text
        enc().encode([FASHION_MNIST.heldout[7][0]])


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
    tokens, _ = e(torch.tensor([0, 9]))
    assert tokens.shape == (2, 1, 16) and tokens.requires_grad
    null, _ = e.null(1)
    torch.testing.assert_close(null[0, 0], e.embedding.weight[10])


def test_none_encoder_ignores_the_prompt():
    e = build_text_encoder(TextConfig(encoder="none"), None)
    assert isinstance(e, NoText)
    a, b = e.encode(["a bag", "anything at all"]), e.null(2)
    assert torch.equal(a[0], b[0]) and a[0].shape == (2, 1, 1)


def test_class_encoders_need_classes():
    with pytest.raises(ValueError, match="class-labelled"):
        build_text_encoder(TextConfig(encoder="onehot"), None)


def test_condition_is_dropped_per_sample():
    tokens = torch.ones(4, 1, 3)
    mask = torch.ones(4, 1, dtype=torch.bool)
    null = torch.zeros(4, 1, 3)
    drop = torch.tensor([True, False, True, False])
    out, out_mask = drop_condition(tokens, mask, null, mask, drop)
    assert out[:, 0, 0].tolist() == [0, 1, 0, 1]
    assert out_mask.all()


def test_dropping_pads_condition_and_null_to_one_length():
    tokens, mask = torch.ones(2, 5, 3), torch.ones(2, 5, dtype=torch.bool)
    null, null_mask = torch.full((2, 2, 3), 7.0), torch.ones(2, 2, dtype=torch.bool)
    out, out_mask = drop_condition(tokens, mask, null, null_mask, torch.tensor([True, False]))
    assert out.shape == (2, 5, 3)
    assert out_mask[0].tolist() == [True, True, False, False, False] and out_mask[1].all()
    assert out[0, :2].eq(7).all() and out[1].eq(1).all()


@pytest.mark.parametrize("kind, model_class", [("bert", "BertModel"), ("clip", "CLIPTextModel"),
                                                ("t5", "T5EncoderModel")])
def test_pretrained_shapes_and_masks(tiny_text_models, kind, model_class):
    e = PretrainedTextEncoder(str(tiny_text_models[kind]))
    assert type(e._model.module).__name__ == model_class
    assert e.dim == 32 and list(e.parameters()) == [] and e.state_dict() == {}
    tokens, mask = e.encode(["a bag", "a photo of a running sneaker", ""])
    # [CLS] a bag [SEP] = 4 tokens; the longest has 8; the empty prompt has its special tokens.
    assert tokens.shape == (3, 8, 32) and mask.sum(1).tolist() == [4, 8, 2]
    assert not tokens.requires_grad
    null, null_mask = e.null(3)
    torch.testing.assert_close(null[0], tokens[2, :2])  # the null is the empty prompt
    assert null_mask.shape == (3, 2) and null_mask.all()


def test_max_length_truncates(tiny_text_models):
    e = PretrainedTextEncoder(str(tiny_text_models["bert"]), max_length=5)
    assert e.encode(["a photo of a running sneaker about a coat"])[0].shape[1] == 5
    clip = PretrainedTextEncoder(str(tiny_text_models["clip"]))
    assert clip.max_length == 16  # the position table, not the tokenizer's "unlimited"


def test_padding_does_not_change_the_model_output(tiny_text_models):
    """The same prompt alone and beside a longer one (so padded): identical encoder tokens on
    its real positions, and an identical DiT prediction, even with garbage in the padding."""
    e = PretrainedTextEncoder(str(tiny_text_models["bert"]))
    alone_t, alone_m = e.encode(["a bag"])
    both_t, both_m = e.encode(["a bag", "a photo of a running sneaker about a long coat"])
    assert both_t.shape[1] > alone_t.shape[1]
    torch.testing.assert_close(both_t[0, :4], alone_t[0], atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    dit = DiT(ModelConfig(width=32, depth=2, heads=2, patch_size=7), (1, 28, 28), 32)
    for p in dit.parameters():  # a non-trivial network: the zero init would hide everything
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(1, 1, 28, 28), torch.tensor([0.3])
    padded_t, padded_m = pad_tokens(alone_t, alone_m, 9)
    padded_t = torch.where(padded_m[..., None], padded_t, torch.randn_like(padded_t) * 100)
    torch.testing.assert_close(dit(x, t, padded_t, padded_m), dit(x, t, alone_t, alone_m),
                               atol=1e-5, rtol=1e-5)
    # ... while a real extra token does change it (the test can fail).
    assert not torch.allclose(dit(x, t, padded_t, padded_m.fill_(True)), dit(x, t, alone_t, alone_m))


def test_precompute_caches_on_disk_and_matches_fresh_encoding(tiny_text_models, tmp_path):
    captions = ["a bag", "a photo of a sneaker", "long shoes", ""]
    e = PretrainedTextEncoder(str(tiny_text_models["bert"]))
    info = e.precompute(captions, cache=tmp_path)
    assert not info["cached"] and info["captions"] == 4 and len(list(tmp_path.iterdir())) == 1
    cached = e.encode(["a photo of a sneaker", "a bag"])
    fresh = PretrainedTextEncoder(str(tiny_text_models["bert"])).encode(["a photo of a sneaker", "a bag"])
    torch.testing.assert_close(cached, fresh, atol=1e-5, rtol=1e-5)
    # A mix of cached and unseen prompts.
    mixed = e.encode(["a dress", "a bag"])
    torch.testing.assert_close(mixed[0][1, :4], fresh[0][1, :4], atol=1e-5, rtol=1e-5)
    again = PretrainedTextEncoder(str(tiny_text_models["bert"]))
    assert again.precompute(captions, cache=tmp_path)["cached"]
    torch.testing.assert_close(again.encode(["a bag"])[0], fresh[0][1:, :4], atol=1e-5, rtol=1e-5)


def test_frozen_encoder_is_shared_by_copies_and_follows_to(tiny_text_models):
    import copy

    e = PretrainedTextEncoder(str(tiny_text_models["bert"]))
    assert copy.deepcopy(e)._model.module is e._model.module
    e.to(torch.float64)
    assert next(e._model.module.parameters()).dtype == torch.float64


def test_missing_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="cannot load the text encoder"):
        PretrainedTextEncoder(str(tmp_path / "nothing-here"))


def test_minilm_loads_offline_from_its_package():
    e = build_text_encoder(TextConfig(encoder="minilm"), None)
    tokens, mask = e.encode(["running shoes", "a bag"])
    assert e.dim == 384 and tokens.shape[0] == 2 and mask.sum(1).tolist() == [4, 4]
    same = torch.nn.functional.cosine_similarity(tokens[0, 1:3].mean(0), e.encode(["sneakers"])[0][0, 1:-1].mean(0), dim=0)
    other = torch.nn.functional.cosine_similarity(tokens[1, 1:3].mean(0), e.encode(["sneakers"])[0][0, 1:-1].mean(0), dim=0)
    assert same > other  # a real sentence encoder: shoes are closer to sneakers than a bag is


@pytest.mark.parametrize("pooling", ["sentence", "both"])
def test_sentence_pooling_shapes_masks_and_null(tiny_text_models, pooling):
    plain = PretrainedTextEncoder(str(tiny_text_models["bert"]))
    e = PretrainedTextEncoder(str(tiny_text_models["bert"]), pooling=pooling)
    raw, raw_mask = plain.encode(["a bag", "a photo of a running sneaker"])
    tokens, mask = e.encode(["a bag", "a photo of a running sneaker"])
    sentence = sentence_embedding(raw, raw_mask) * 32 ** 0.5
    torch.testing.assert_close(tokens[:, 0], sentence)  # unit norm, times sqrt(width)
    torch.testing.assert_close(sentence[0].norm(), torch.tensor(32 ** 0.5))
    if pooling == "sentence":
        assert tokens.shape == (2, 1, 32) and mask.all()
    else:  # the sentence token, then the tokens with their mask (padding stays masked)
        assert tokens.shape == (2, 1 + raw.shape[1], 32)
        assert mask[:, 0].all() and torch.equal(mask[:, 1:], raw_mask)
        torch.testing.assert_close(tokens[:, 1:], raw)
    null, null_mask = e.null(3)
    expect, expect_mask = e.encode([""])
    torch.testing.assert_close(null, expect.expand(3, -1, -1)) and torch.equal(null_mask, expect_mask.expand(3, -1))
    # padding does not move the sentence embedding
    alone = sentence_embedding(*plain.encode(["a bag"]))
    torch.testing.assert_close(alone[0], sentence[0] / 32 ** 0.5, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="text.pooling"):
        PretrainedTextEncoder(str(tiny_text_models["bert"]), pooling="max")


def test_token_noise_is_relative_masked_and_only_in_training(tiny_text_models):
    tokens = torch.full((2, 3, 64), 2.0)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    noisy = perturb_tokens(tokens, mask, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(noisy[~mask], tokens[~mask])
    assert 0.9 < (noisy - tokens)[mask].std().item() < 1.1  # 0.5 x RMS 2
    e = PretrainedTextEncoder(str(tiny_text_models["bert"]), pooling="sentence", noise=0.5)
    inputs = e.tokenize(["a bag", "a dress"])
    clean = e.eval()(inputs)[0]
    assert torch.equal(e(inputs)[0], clean)  # evaluation / sampling: no noise
    e.train()
    assert not torch.allclose(e(inputs)[0], clean)
    assert torch.equal(e.null(2)[0], e.eval().null(2)[0])  # the null is never perturbed
