import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from t2i.utils.fsutil import InUse, Lock, atomic_directory, write_text_atomic


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    with Lock(tmp_path, what="run directory"):
        with pytest.raises(InUse, match=rf"run directory {tmp_path} is in use by process {os.getpid()} on "):
            Lock(tmp_path, what="run directory")
    Lock(tmp_path).release()  # free again once released


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, pathlib; from t2i.utils.fsutil import Lock; "
        f"lock = Lock(pathlib.Path({str(tmp_path)!r})); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(InUse, match=f"process {holder.pid}"):
        Lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    start = time.perf_counter()
    Lock(tmp_path).release()  # the kernel dropped the dead process's lock
    assert time.perf_counter() - start < 1


def test_a_full_disk_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    with pytest.raises(OSError, match="no space left on the device writing .*cache") as e:
        with atomic_directory(tmp_path / "cache") as tmp:
            (tmp / "a").write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert e.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError, match="no space left"):
        write_text_atomic(tmp_path / "latest", "step_1")
    monkeypatch.setattr(os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_second_cache_builder_waits_for_the_first(tmp_path, capfd):
    """Two `t2i prepare` of one cache: the second blocks on the lock until the first is done."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time, pathlib; from t2i.utils.fsutil import Lock; "
        f"lock = Lock(pathlib.Path({str(tmp_path)!r}), '.cache.lock'); print('held', flush=True); "
        "time.sleep(1.5)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.perf_counter()
    with Lock(tmp_path, ".cache.lock", wait=True, what="the latent cache"):
        waited = time.perf_counter() - start
    holder.wait()
    assert waited > 0.5
    assert f"waiting for process {holder.pid}" in capfd.readouterr().err
