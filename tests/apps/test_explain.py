import pytest

from t2i.apps.explain import Explainer
from t2i.apps.web import Demo
from t2i.text.captions import FASHION_MNIST


@pytest.mark.parametrize("captions", ["templates", "bank"])
def test_a_training_caption_is_nearest_to_itself(text_pipe, word_bert, captions):
    explainer = Explainer(text_pipe(word_bert, captions))
    classes = FASHION_MNIST.with_bank() if captions == "bank" else FASHION_MNIST
    assert len(explainer.index.captions) == sum(len(c) for c in classes.training_captions())
    e = explainer.explain(["a photo of a sneaker", "a dress"], k=4)
    assert [x.prompt for x in e] == ["a photo of a sneaker", "a dress"]
    caption, label, sim = e[0].nearest[0]
    assert (caption, label) == ("a photo of a sneaker", "Sneaker") and sim == pytest.approx(1.0, abs=1e-5)
    assert len(e[0].nearest) == 4 and [s for *_, s in e[0].nearest] == sorted((s for *_, s in e[0].nearest), reverse=True)
    assert e[0].classes[0] == ("Sneaker", pytest.approx(1.0, abs=1e-5)) and len(e[0].classes) == 10
    assert e[1].classes[0][0] == "Dress"
    text = e[0].format()
    assert "'a photo of a sneaker' is read as: Sneaker 1.00" in text and "(Sneaker)" in text


def test_explain_needs_a_pretrained_encoder(text_pipe):
    pipe = text_pipe("onehot")
    with pytest.raises(ValueError, match="pretrained text encoder"):
        Explainer(pipe)
    assert Demo(pipe).explain("a bag") == "" and not Demo(pipe).explains()


def test_the_demo_says_what_it_read(text_pipe, word_bert):
    demo = Demo(text_pipe(word_bert))
    assert demo.explains() and demo.explain("   ") == ""
    said = demo.explain("a photo of a sneaker")
    assert said.startswith("**Read as:** Sneaker 1.00") and "“a photo of a sneaker” (Sneaker, 1.00)" in said


def test_explain_says_how_it_read_the_prompt(text_pipe, word_bert):
    pipe = text_pipe(word_bert)
    e = Explainer(pipe).explain(["a photo of a sneeker", "a photo of a sneaker"], k=2)
    assert e[0].spelled == e[1].spelled == e[1].prompt == "a photo of a sneaker"
    assert e[0].nearest == e[1].nearest
    assert e[0].format().startswith("'a photo of a sneeker' (looked up as 'a photo of a sneaker') is read as: Sneaker")
    assert "looked up" not in e[1].format() and e[0].head is None
    headed = Explainer(pipe).explain(["a photo of a sneeker for the evening"])[0]
    assert headed.head == "a photo of a sneaker"
    assert headed.format().startswith("'a photo of a sneeker for the evening' (looked up as 'a photo of a sneaker "
                                      "for the evening', head 'a photo of a sneaker') is read as:")
    said = Demo(pipe).explain("a photo of a sneeker")
    assert said.startswith("**Looked up:** looked up as 'a photo of a sneaker'  \n**Read as:** Sneaker 1.00")


def test_without_classes_explain_gives_the_dictionarys_reading(debug_config, word_bert, tmp_path):
    from dataclasses import replace

    from t2i.pipeline import Pipeline, build_networks
    config = replace(debug_config, text=replace(debug_config.text, encoder=word_bert),
                     data=replace(debug_config.data, dataset="shapes", image_size=28, channels=3,
                                  cache_dir=str(tmp_path)))
    pipe = Pipeline(config, build_networks(config, (3, 28, 28)), "cpu", "fp32")
    hoodie, circle = Explainer(pipe).explain(["a hoodie", "a red circle"])
    assert hoodie.format() == ("'a hoodie' is drawn as 'a hooded sweatshirt'\n"
                               "  hoodie -> hooded sweatshirt (means: hooded sweatshirt)")
    assert circle.format() == "'a red circle' is drawn as typed"
    assert Explainer(pipe, dictionary=False).explain(["a hoodie"])[0].format() == "'a hoodie' is drawn as typed"
