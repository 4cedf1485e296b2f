import dataclasses
import os
from pathlib import Path

import pytest
import torch

import t2i
from t2i.presets import get_preset

# Child processes (the CLI, torchrun's ranks, notebook kernels) import the t2i under test, not
# whichever checkout an editable install last pointed at.
REPO = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
assert Path(t2i.__file__).resolve().parent == REPO / "t2i", f"testing {t2i.__file__}, not {REPO}"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def skip_without(what: str) -> None:
    """Skip a test that needs a system package here — but fail in CI (T2I_REQUIRE_EMOJI=1),
    which installs them, so the emoji tests never pass by not running."""
    if os.environ.get("T2I_REQUIRE_EMOJI"):
        pytest.fail(f"{what} is missing, and T2I_REQUIRE_EMOJI is set")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session")
def missing():
    """`skip_without`, for tests that find out for themselves what they lack."""
    return skip_without


@pytest.fixture(scope="session")
def emoji_font():
    """The Noto Color Emoji font (Debian fonts-noto-color-emoji), or a skip."""
    from t2i.data import DataError
    from t2i.data.emoji import find_font
    try:
        return find_font()
    except DataError:
        skip_without("fonts-noto-color-emoji")


@pytest.fixture
def debug_config():
    """The `debug` preset, in fp32 on the CPU."""
    cfg = get_preset("debug")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cpu"))


@pytest.fixture(scope="session")
def tiny_vae_dir(tmp_path_factory):
    """A random 1-channel AutoencoderKL, 16x16 -> 4x8x8, saved as a pretrained folder."""
    from t2i.sections import VAEConfig
    from t2i.training.vae import build_autoencoder

    torch.manual_seed(0)
    vae = build_autoencoder(VAEConfig(channels="8,16"), channels_in=1, resolution=16)
    vae.register_to_config(scaling_factor=0.5)
    path = tmp_path_factory.mktemp("vae") / "tiny-vae"
    vae.save_pretrained(str(path))
    return path


@pytest.fixture
def latent_config(debug_config, tiny_vae_dir, tmp_path):
    """`debug` in the tiny VAE's latent space, with its latent cache under tmp_path."""
    return debug_config.override([f"vae.name={tiny_vae_dir}", "model.patch_size=2",
                                  f"data.cache_dir={tmp_path / 'cache'}"])


WORDS = "a an the photo of picture bag sneaker running shoes dress coat long prompt about much".split()


@pytest.fixture(scope="session")
def tiny_text_models(tmp_path_factory):
    """A random 1-layer BERT, CLIP text model and T5 encoder (width 32) sharing a tiny
    WordPiece tokenizer, each saved as a pretrained folder."""
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        CLIPTextConfig,
        CLIPTextModel,
        T5Config,
        T5EncoderModel,
    )

    root = tmp_path_factory.mktemp("text")
    # The vocabulary as a dict: transformers 5 ignores a `vocab_file` here and would map every
    # word to [UNK].
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(tokens)})
    assert tokenizer("a bag")["input_ids"] == [2, 5, 11, 3]
    n = len(WORDS) + 5
    torch.manual_seed(0)
    models = {
        "bert": BertModel(BertConfig(vocab_size=n, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=37,
                                     max_position_embeddings=64)),
        "clip": CLIPTextModel(CLIPTextConfig(vocab_size=n, hidden_size=32, intermediate_size=37,
                                             num_hidden_layers=1, num_attention_heads=2,
                                             max_position_embeddings=16, bos_token_id=2,
                                             eos_token_id=3, pad_token_id=0)),
        "t5": T5EncoderModel(T5Config(vocab_size=n, d_model=32, d_kv=16, d_ff=37, num_layers=1,
                                      num_heads=2)),
    }
    paths = {}
    for name, model in models.items():
        paths[name] = root / name
        model.save_pretrained(str(paths[name]))
        tokenizer.save_pretrained(str(paths[name]))
    return paths


@pytest.fixture
def grey_folder(tmp_path):
    """A captioned folder (captions.jsonl) of eight 16x16 grayscale images of rising shades."""
    import json

    from PIL import Image

    folder = tmp_path / "grey"
    folder.mkdir()
    for k in range(8):
        Image.new("L", (16, 16), 30 * k).save(folder / f"{k}.png")
    (folder / "captions.jsonl").write_text("".join(
        json.dumps({"file": f"{k}.png", "caption": "grey"}) + "\n" for k in range(8)))
    return folder


@pytest.fixture(scope="session")
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


@pytest.fixture
def text_pipe(debug_config, tmp_path):
    """make(encoder, captions="templates", pooling="tokens"): an untrained `debug` pipeline on
    the CPU with that text encoder, its caption cache under tmp_path."""
    from t2i.pipeline import Pipeline, build_networks

    def make(encoder, captions="templates", pooling="tokens"):
        config = dataclasses.replace(
            debug_config, text=dataclasses.replace(debug_config.text, encoder=encoder, pooling=pooling),
            data=dataclasses.replace(debug_config.data, cache_dir=str(tmp_path), captions=captions))
        return Pipeline(config, build_networks(config, (1, 28, 28)), "cpu", "fp32")
    return make
