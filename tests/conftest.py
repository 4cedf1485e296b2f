import dataclasses

import pytest
import torch

from t2i.config import get_preset


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def debug_config():
    """The `debug` preset, in fp32 on the CPU."""
    cfg = get_preset("debug")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cpu"))


@pytest.fixture(scope="session")
def tiny_vae_dir(tmp_path_factory):
    """A random 1-channel AutoencoderKL, 16x16 -> 4x8x8, saved as a pretrained folder."""
    from t2i.config import VAEConfig
    from t2i.vae import build_autoencoder

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
