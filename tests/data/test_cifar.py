
import numpy as np
import pytest

from t2i import data
from t2i.data import (
    DataError,
)
from t2i.sections import DataConfig


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
