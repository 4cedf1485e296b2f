import dataclasses

import pytest
import torch

from t2i.models import UNet, build_backbone
from t2i.sections import ModelConfig


def test_unet_backbone_shapes_zero_start_and_masking(perturb):
    cfg = ModelConfig(backbone="unet", width=32, heads=2, unet_channels="16,32")
    unet = build_backbone(cfg, (1, 28, 28), text_dim=10)
    assert isinstance(unet, UNet)
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    tokens, mask = torch.randn(2, 3, 10), torch.tensor([[True, True, False], [True, False, False]])
    assert torch.count_nonzero(unet(x, t, tokens, mask)) == 0  # zero output layer
    perturb(unet)
    out = unet(x, t, tokens, mask)
    garbage = tokens.clone()
    garbage[~mask] = 100.0
    torch.testing.assert_close(unet(x, t, garbage, mask), out, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(unet(x, t, garbage, torch.ones_like(mask)), out)
    with pytest.raises(ValueError, match="not divisible"):
        build_backbone(dataclasses.replace(cfg, unet_channels="16,32,32,32"), (1, 28, 28), 10)
    with pytest.raises(ValueError, match="backbone"):
        build_backbone(dataclasses.replace(cfg, backbone="mamba"), (1, 28, 28), 10)
