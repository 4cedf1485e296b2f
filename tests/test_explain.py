import dataclasses

import pytest
import torch

from t2i.captions import FASHION_MNIST
from t2i.explain import Explainer
from t2i.pipeline import Pipeline, build_networks
from t2i.web import Demo


@pytest.fixture(scope="module")
def word_bert(tiny_text_models, tmp_path_factory):
    """The tiny random BERT with its layer's output and position embeddings zeroed: a token's
    state is then its (normalised) word embedding, so sentences with different words are far
    apart (the random model otherwise embeds every sentence nearly alike)."""
    from transformers import AutoModel, AutoTokenizer
    model = AutoModel.from_pretrained(str(tiny_text_models["bert"]))
    with torch.no_grad():
        model.embeddings.position_embeddings.weight.zero_()
        model.embeddings.token_type_embeddings.weight.zero_()
        model.encoder.layer[0].attention.output.dense.weight.zero_()
        model.encoder.layer[0].output.dense.weight.zero_()
    out = tmp_path_factory.mktemp("word_bert")
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tiny_text_models["bert"])).save_pretrained(str(out))
    return str(out)


def _pipe(config, text_encoder, tmp_path, captions="templates"):
    config = dataclasses.replace(
        config, text=dataclasses.replace(config.text, encoder=text_encoder),
        data=dataclasses.replace(config.data, cache_dir=str(tmp_path), captions=captions))
    return Pipeline(config, build_networks(config, (1, 28, 28)), "cpu", "fp32")


@pytest.mark.parametrize("captions", ["templates", "bank"])
def test_a_training_caption_is_nearest_to_itself(debug_config, word_bert, tmp_path, captions):
    explainer = Explainer(_pipe(debug_config, word_bert, tmp_path, captions))
    classes = FASHION_MNIST.with_bank() if captions == "bank" else FASHION_MNIST
    assert len(explainer.captions) == sum(len(c) for c in classes.training_captions())
    e = explainer.explain(["a photo of a sneaker", "a dress"], k=4)
    assert [x.prompt for x in e] == ["a photo of a sneaker", "a dress"]
    caption, label, sim = e[0].nearest[0]
    assert (caption, label) == ("a photo of a sneaker", "Sneaker") and sim == pytest.approx(1.0, abs=1e-5)
    assert len(e[0].nearest) == 4 and [s for *_, s in e[0].nearest] == sorted((s for *_, s in e[0].nearest), reverse=True)
    assert e[0].classes[0] == ("Sneaker", pytest.approx(1.0, abs=1e-5)) and len(e[0].classes) == 10
    assert e[1].classes[0][0] == "Dress"
    text = e[0].format()
    assert "'a photo of a sneaker' is read as: Sneaker 1.00" in text and "(Sneaker)" in text


def test_explain_needs_a_pretrained_encoder(debug_config, tmp_path):
    pipe = _pipe(debug_config, "onehot", tmp_path)
    with pytest.raises(ValueError, match="pretrained text encoder"):
        Explainer(pipe)
    assert Demo(pipe).explain("a bag") == "" and not Demo(pipe).explains()


def test_the_demo_says_what_it_read(debug_config, word_bert, tmp_path):
    demo = Demo(_pipe(debug_config, word_bert, tmp_path))
    assert demo.explains() and demo.explain("   ") == ""
    said = demo.explain("a photo of a sneaker")
    assert said.startswith("**Read as:** Sneaker 1.00") and "“a photo of a sneaker” (Sneaker, 1.00)" in said
