import dataclasses

import pytest
import torch

from t2i import Pipeline
from t2i.pipeline import build_networks
from t2i.text.wordnet import load_wordnet


@pytest.fixture(scope="module")
def pipe():
    from t2i.presets import get_preset
    cfg = get_preset("debug")
    networks = build_networks(cfg, (1, 28, 28))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in networks.parameters():
            p.add_(0.1 * torch.randn_like(p))  # an "trained" model whose output is not zero
    return Pipeline(cfg, networks, "cpu", "fp32")


def test_images_shape_range_and_order(pipe):
    images = pipe(["a bag", "sneakers", "a dress"], steps=3, cfg=2.0, seed=0, num_per_prompt=2)
    assert images.shape == (6, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1
    # same prompt, different samples differ; prompt-major order
    assert not torch.allclose(images[0], images[1])


def test_same_seed_same_images(pipe):
    a = pipe(["a bag"], steps=3, seed=5, num_per_prompt=2)
    b = pipe(["a bag"], steps=3, seed=5, num_per_prompt=2)
    c = pipe(["a bag"], steps=3, seed=6, num_per_prompt=2)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    # sample k starts from seed + k whatever else is asked for in the call
    torch.testing.assert_close(c[0], a[1])
    d = pipe(["a coat", "a bag"], steps=3, seed=5, num_per_prompt=2)
    torch.testing.assert_close(d[2:], a)


def test_callback_and_unknown_prompt(pipe):
    seen = []
    pipe(["a bag"], steps=4, sampler="heun", callback=lambda i, t, x, x1: seen.append(i))
    assert seen == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="a cat"):
        pipe(["a cat"])


def test_from_pretrained(tmp_path, pipe):
    from t2i.checkpoint import save_checkpoint
    sd = pipe.networks.state_dict()
    save_checkpoint(tmp_path, 1, pipe.config, sd, sd, {}, {"step": 1})
    loaded = Pipeline.from_pretrained(tmp_path, device="cpu", precision="fp32")
    torch.testing.assert_close(loaded(["a bag"], steps=2), pipe(["a bag"], steps=2))


def test_a_compiled_pipeline_samples_what_the_eager_one_does(pipe, tmp_path, monkeypatch):
    from t2i.utils import runtime
    if (problem := runtime._compile_problem()) is not None:  # CI installs g++
        pytest.skip(f"torch.compile cannot build kernels here ({problem})")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    compiled = Pipeline(pipe.config, pipe.networks, "cpu", "fp32", compile=True)
    assert compiled.backbone is not pipe.networks["backbone"]
    assert compiled.backbone._orig_mod is pipe.networks["backbone"]  # the same weights, compiled
    assert list(compiled.networks.state_dict()) == list(pipe.networks.state_dict())
    kwargs = dict(steps=3, cfg=2.0, seed=0, num_per_prompt=2)
    torch.testing.assert_close(compiled(["a bag", "sneakers"], **kwargs), pipe(["a bag", "sneakers"], **kwargs),
                               rtol=0, atol=1e-5)  # fused kernels round differently in the last bits


def test_clip_x0_is_a_call_argument_not_a_config_edit(pipe):
    before = pipe.config
    plain = pipe(["a bag"], steps=3, seed=2)
    clipped = pipe(["a bag"], steps=3, seed=2, clip_x0=True)
    assert pipe.config is before and not pipe.config.sample.clip_x0
    assert clipped.shape == plain.shape
    torch.testing.assert_close(pipe(["a bag"], steps=3, seed=2, clip_x0=False), plain)


def test_guidance_interval_from_the_config_or_the_call(pipe):
    full = pipe(["a bag"], steps=4, cfg=3.0, seed=1)
    none = pipe(["a bag"], steps=4, cfg=3.0, seed=1, cfg_interval=(0.0, 0.0))
    torch.testing.assert_close(none, pipe(["a bag"], steps=4, cfg=1.0, seed=1))  # never guided
    late = pipe(["a bag"], steps=4, cfg=3.0, seed=1, cfg_interval=(0.5, 1.0))
    assert not torch.allclose(late, full) and not torch.allclose(late, none)
    config = dataclasses.replace(pipe.config, sample=dataclasses.replace(
        pipe.config.sample, cfg_start=0.5, cfg_end=1.0))
    own = Pipeline(config, pipe.networks, "cpu", "fp32")
    torch.testing.assert_close(own(["a bag"], steps=4, cfg=3.0, seed=1), late)
    assert own.sampling(cfg=3.0)["cfg_interval"] == (0.5, 1.0)
    with pytest.raises(ValueError, match="interval"):
        pipe(["a bag"], steps=2, cfg_interval=(0.9, 0.1))


def test_a_time_shift_changes_the_steps_and_comes_from_the_checkpoint(pipe):
    plain = pipe(["a bag"], steps=4, cfg=3.0, seed=1)
    shifted = pipe(["a bag"], steps=4, cfg=3.0, seed=1, shift=3.0)
    assert not torch.allclose(plain, shifted)
    config = dataclasses.replace(pipe.config, sample=dataclasses.replace(pipe.config.sample, shift=3.0))
    own = Pipeline(config, pipe.networks, "cpu", "fp32")
    assert own.sampling()["shift"] == 3.0 and pipe.sampling()["shift"] == 1.0
    torch.testing.assert_close(own(["a bag"], steps=4, cfg=3.0, seed=1), shifted)
    with pytest.raises(ValueError, match="shift"):
        pipe(["a bag"], steps=2, shift=0.0)


def test_guided_condition_is_padded_to_the_null_length(pipe):
    (tokens, mask), (null_tokens, null_mask) = pipe.condition(["a bag", "a coat"], num_per_prompt=2)
    assert tokens.shape[:2] == null_tokens.shape[:2] and mask.shape == null_mask.shape
    assert tokens.shape[0] == 4


@pytest.mark.skipif(load_wordnet() is None, reason="needs WordNet (wordnet-base)")
def test_unknown_words_are_read_in_the_dictionary_before_the_encoder(text_pipe, word_bert):
    pipe = text_pipe(word_bert)
    reader = pipe.reader()
    assert pipe.reader() is reader and pipe.sampling()["dictionary"] is True
    read, (word,) = reader("a hoodie")
    assert read == "a hooded pullover" and word.how == "means"  # hooded sweatshirt; WordNet: a kind of pullover
    on = pipe.condition(["a hoodie"], pad=False, dictionary=True)[0]
    as_read = pipe.condition([read], pad=False)[0]
    typed = pipe.condition(["a hoodie"], pad=False)[0]
    torch.testing.assert_close(on, as_read)
    assert on[0].shape != typed[0].shape or not torch.allclose(on[0], typed[0])
    asked, condition = [], pipe.condition
    pipe.condition = lambda *a, **kw: asked.append(kw["dictionary"]) or condition(*a, **kw)
    pipe(["a hoodie"], steps=1)
    pipe(["a hoodie"], steps=1, dictionary=False)
    assert asked == [True, False]  # the config's default, then the call's
    assert text_pipe("onehot").reader() is None  # a class encoder reads class names only
