import functools
import gzip
import hashlib
import http.server
import json
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from t2i import data
from t2i.config import DataConfig
from t2i.data import (DataError, LatentDataset, find_fashion_mnist, latent_cache_path,
                      load_fashion_mnist, open_latent_cache, parse_idx, read_idx)
from t2i.codecs import load_codec


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_hand_made_idx():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images)), images)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)


def test_truncated_and_corrupt_idx_are_rejected_by_name(tmp_path):
    raw = idx_bytes(np.zeros((4, 5, 5), dtype=np.uint8))
    with pytest.raises(DataError, match="truncated"):
        parse_idx(raw[:-3], "x.idx")
    with pytest.raises(DataError, match="magic"):
        parse_idx(b"\x01\x02" + raw[2:], "x.idx")
    bad_gz = tmp_path / "train-images-idx3-ubyte.gz"
    bad_gz.write_bytes(gzip.compress(raw)[:-10])  # truncated archive
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        read_idx(bad_gz)
    good_gz = tmp_path / "ok.gz"
    good_gz.write_bytes(gzip.compress(raw))
    assert read_idx(good_gz).shape == (4, 5, 5)
    with pytest.raises(DataError, match="checksum"):
        read_idx(good_gz, sha256="0" * 64)


@pytest.fixture
def fake_files(monkeypatch):
    """Four tiny hand-made Fashion-MNIST-shaped files, registered as the expected ones."""
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 255, (6, 28, 28))),
        "train-labels-idx1-ubyte.gz": idx_bytes(np.arange(6) % 10),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 255, (3, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(np.arange(3)),
    }
    monkeypatch.setattr(data.idx, "FASHION_MNIST_FILES",
                        {k: (hashlib.sha256(v).hexdigest(), len(v)) for k, v in files.items()})
    monkeypatch.setattr(data.download, "DEBIAN_DIR", Path("/nonexistent"))
    monkeypatch.delenv("T2I_DATA", raising=False)
    return {k: gzip.compress(v) for k, v in files.items()}


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over tmp_path/www; yields (www dir, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_from_mirror_with_verification(tmp_path, monkeypatch, fake_files, server):
    www, url = server
    for name, gz in fake_files.items():
        (www / name).write_bytes(gz)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("T2I_FASHION_MNIST_MIRROR", url)
    root = find_fashion_mnist()
    assert root == tmp_path / "cache" / "t2i" / "fashion-mnist"
    ds = data.load_fashion_mnist("train")
    assert ds.images.shape == (6, 1, 28, 28) and ds.labels.tolist() == [0, 1, 2, 3, 4, 5]
    # second call finds the cache and does not download again
    for f in www.iterdir():
        f.unlink()
    assert find_fashion_mnist() == root


def test_corrupt_download_is_refused_and_leaves_nothing(tmp_path, monkeypatch, fake_files, server):
    www, url = server
    for name, gz in fake_files.items():
        (www / name).write_bytes(gz)
    (www / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01garbage"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("T2I_FASHION_MNIST_MIRROR", url)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        find_fashion_mnist()
    cache = tmp_path / "cache" / "t2i" / "fashion-mnist"
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert not list(cache.glob("*.part"))


def test_search_order(tmp_path, monkeypatch, fake_files):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        for name, gz in fake_files.items():
            (d / name).write_bytes(gz)
    monkeypatch.setenv("T2I_DATA", str(b))
    assert find_fashion_mnist(str(a)) == a
    assert find_fashion_mnist() == b
    monkeypatch.delenv("T2I_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="not found"):
        find_fashion_mnist(download_ok=False)


def test_real_fashion_mnist():
    train = data.load_fashion_mnist("train")
    assert train.images.shape == (60000, 1, 28, 28) and train.labels.max() == 9
    x, y = train.batch(np.arange(4))
    assert x.min() >= -1 and x.max() <= 1 and y.shape == (4,)
    assert len(data.load_fashion_mnist("test")) == 10000


# ----------------------------------------------------------------------------- latent caches

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
    assert not path.exists() and not any(path.parent.iterdir())


# ----------------------------------------------------------------------------- MNIST, CIFAR-10

def test_mnist_downloads_and_has_digit_captions(tmp_path, monkeypatch, server):
    www, url = server
    rng = np.random.default_rng(1)
    files = {"train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 255, (5, 28, 28))),
             "train-labels-idx1-ubyte.gz": idx_bytes(np.array([7, 1, 0, 9, 3])),
             "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 255, (2, 28, 28))),
             "t10k-labels-idx1-ubyte.gz": idx_bytes(np.array([2, 2]))}
    monkeypatch.setattr(data.idx, "MNIST_FILES", {k: (None, len(v)) for k, v in files.items()})
    for name, raw in files.items():
        (www / name).write_bytes(gzip.compress(raw))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("T2I_DATA", raising=False)
    monkeypatch.setenv("T2I_MNIST_MIRROR", url)
    ds = data.load_dataset(DataConfig(dataset="mnist"))
    assert ds.images.shape == (5, 1, 28, 28) and ds.classes.names[7] == "7"
    assert "the digit 7" in ds.classes.training_captions()[7]
    # A file of the wrong size is refused before it lands.
    (www / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3]))))
    (tmp_path / "cache" / "t2i" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels"):
        data.find_idx_dataset("mnist")


def cifar_archive(path, per_batch=2):
    """A CIFAR-10-shaped tar.gz: five training batches and a test batch of `per_batch` images."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
            batch = {b"data": rng.integers(0, 255, (per_batch, 3072)).astype(np.uint8),
                     b"labels": [(k + j) % 10 for j in range(per_batch)]}
            raw = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_cifar10_downloads_unpacks_and_reads(tmp_path, monkeypatch, server):
    www, url = server
    cifar_archive(www / "cifar.tar.gz")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("T2I_DATA", raising=False)
    monkeypatch.setenv("T2I_CIFAR10_URL", url + "cifar.tar.gz")
    train = data.load_dataset(DataConfig(dataset="cifar10"))
    assert train.images.shape == (10, 3, 32, 32) and train.labels.tolist()[:4] == [0, 1, 1, 2]
    assert train.classes.names[3] == "cat" and len(data.load_dataset(DataConfig(dataset="cifar10"), "test")) == 2
    assert data.dataset_info(DataConfig(dataset="cifar10"))["shape"] == (3, 32, 32)
    assert not list((tmp_path / "cache" / "t2i" / "cifar10").glob("*.tar.gz"))  # unpacked, removed


def test_cifar10_batches_cannot_run_code(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load posix.system|refusing to load os.system"):
        data.read_cifar_batch(path)
