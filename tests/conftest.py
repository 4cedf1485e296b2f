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
