import json

import numpy as np
import pytest
import torch

from t2i.codecs import load_codec
from t2i.data import (
    DataError,
    LatentDataset,
    latent_cache_path,
    load_fashion_mnist,
    open_latent_cache,
)


def _codec(config):
    return load_codec(config)


def test_memmap_latents_match_encoding_in_memory(latent_config):
    codec, data = _codec(latent_config), load_fashion_mnist("train", subset=512)
    cached = open_latent_cache(latent_config, codec, progress=False)
    assert isinstance(cached.images, np.memmap) and len(cached) == 512
    assert isinstance(cached, LatentDataset)
    idx = torch.tensor([5, 0, 511, 17])
    latents, labels = cached.batch(idx)
    torch.testing.assert_close(latents, codec.encode(data.batch(idx)[0]))
    assert torch.equal(labels, data.labels[idx])


def test_stale_cache_is_refused_then_rebuilt(latent_config):
    codec = _codec(latent_config)
    open_latent_cache(latent_config, codec, progress=False)
    manifest = json.loads((latent_cache_path(latent_config) / "manifest.json").read_text())
    with torch.no_grad():  # the VAE was retrained in place: its latents are no longer valid
        next(codec.vae.parameters()).add_(0.1)
    with pytest.raises(DataError, match="vae_sha256.*t2i prepare"):
        open_latent_cache(latent_config, codec, progress=False)
    open_latent_cache(latent_config, codec, rebuild=True, progress=False)
    rebuilt = json.loads((latent_cache_path(latent_config) / "manifest.json").read_text())
    assert rebuilt["vae_sha256"] != manifest["vae_sha256"]
    other_data = load_fashion_mnist("test", subset=0)
    other_data.images, other_data.labels = other_data.images[:512], other_data.labels[:512]
    with pytest.raises(DataError, match="data_sha256"):
        open_latent_cache(latent_config, codec, data=other_data, progress=False)


def test_interrupted_prepare_leaves_no_cache(latent_config):
    codec = _codec(latent_config)
    calls = []

    def failing_encode(images):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return torch.zeros(len(images), *codec.latent_shape)
    codec.encode = failing_encode
    with pytest.raises(KeyboardInterrupt):
        open_latent_cache(latent_config.override(["data.subset=1000"]), codec, progress=False)
    path = latent_cache_path(latent_config)
    # Only the (released) lock file of the cache is left beside it.
    assert not path.exists() and [p.name for p in path.parent.iterdir()] == [f".{path.name}.lock"]
