import os
import shutil
import subprocess
import sys

import pytest
import torch

from t2i.codecs import AutoencoderCodec, IdentityCodec, load_codec
from t2i.config import Config
from t2i.data import load_fashion_mnist
from t2i.sections import VAEConfig
from t2i.training.vae import build_autoencoder


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").batch(torch.arange(64))[0]


def test_pixel_codec_can_resize(images):
    from t2i.codecs import IdentityCodec

    codec = IdentityCodec((1, 28, 28), resolution=16)
    small = codec.encode(images[:4])
    assert small.shape == (4, 1, 16, 16) and codec.latent_shape == (1, 16, 16)
    back = codec.decode(small)
    assert back.shape == (4, 1, 28, 28)
    assert (back - images[:4]).abs().mean() < 0.25  # blurrier, but the same images


def test_identity_codec_is_pixel_space(images):
    codec = load_codec(Config())
    assert isinstance(codec, IdentityCodec) and codec.latent_shape == (1, 28, 28)
    assert codec.decode(codec.encode(images)) is images


def test_tiny_vae_round_trip_shapes_range_and_determinism(images):
    vae = build_autoencoder(VAEConfig(channels="8,16,16", latent_channels=3), 1, 32)
    codec = AutoencoderCodec(vae.eval(), 1.0, (1, 28, 28), 32)
    z = codec.encode(images[:4])
    assert z.shape == (4, 3, 8, 8) and codec.latent_shape == (3, 8, 8)
    torch.testing.assert_close(codec.encode(images[:4]), z)  # the posterior mean, not a sample
    x = codec.decode(z)
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_pretrained_rgb_vae_loads_from_a_folder_and_handles_grayscale(tmp_path, images):
    vae = build_autoencoder(VAEConfig(channels="8,16", latent_channels=4), 3, 64)
    vae.register_to_config(scaling_factor=0.18215)
    vae.save_pretrained(str(tmp_path / "rgb-vae"))
    cfg = Config().override([f"vae.name={tmp_path / 'rgb-vae'}", "vae.resolution=16"])
    codec = load_codec(cfg)
    assert codec.scale == pytest.approx(0.18215)  # vae.scale=0 takes the VAE's own factor
    assert codec.latent_shape == (4, 8, 8)
    assert codec.decode(codec.encode(images[:2])).shape == (2, 1, 28, 28)
    assert load_codec(cfg.override(["vae.scale=2.0"])).scale == 2.0


def test_missing_vae_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="t2i vae train"):
        load_codec(Config().override([f"vae.name={tmp_path / 'nothing'}"]))


def test_hub_id_loads_from_the_hub_cache_offline(tmp_path, tiny_vae_dir):
    """A hub id resolves through huggingface_hub's cache layout, as a downloaded VAE would;
    offline and uncached, it is a clear error rather than a hang or a traceback."""
    snapshot = tmp_path / "hub" / "models--someone--tiny-vae" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_vae_dir, snapshot)
    (tmp_path / "hub" / "models--someone--tiny-vae" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--tiny-vae" / "refs" / "main").write_text("0" * 40)
    script = ("from t2i.codecs import load_autoencoder\n"
              "print(load_autoencoder('someone/tiny-vae').config.latent_channels)\n"
              "try:\n    load_autoencoder('someone/absent-vae')\n"
              "except FileNotFoundError as e:\n    print('error:', e)\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "4" and "could not load VAE 'someone/absent-vae'" in lines[1]
