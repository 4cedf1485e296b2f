import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from t2i import data
from t2i.data import (
    DataError,
    find_fashion_mnist,
    parse_idx,
    read_idx,
)
from t2i.sections import DataConfig


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
