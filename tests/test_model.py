import pytest
import torch

from t2i.config import ModelConfig
from t2i.model import DiT, sincos_2d, timestep_embedding

CFG = ModelConfig(width=64, depth=2, heads=2, patch_size=4)


def _perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))


def test_untrained_model_outputs_zeros():
    model = DiT(CFG, (1, 28, 28), text_dim=10)
    out = model(torch.randn(3, 1, 28, 28), torch.rand(3), torch.randn(3, 1, 10),
                torch.ones(3, 1, dtype=torch.bool))
    assert out.shape == (3, 1, 28, 28)
    assert torch.count_nonzero(out) == 0


def test_patchify_round_trip():
    model = DiT(CFG, (3, 16, 8), text_dim=4)
    x = torch.randn(2, 3, 16, 8)
    assert model.patchify(x).shape == (2, 8, 48)
    torch.testing.assert_close(model.unpatchify(model.patchify(x)), x)


def test_masked_tokens_are_ignored():
    model = DiT(CFG, (1, 28, 28), text_dim=8)
    _perturb(model)
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    tokens = torch.randn(2, 3, 8)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = model(x, t, tokens, mask)
    tokens2 = tokens.clone()
    tokens2[~mask] = 100.0  # padding content must not matter
    torch.testing.assert_close(model(x, t, tokens2, mask), out)
    tokens3 = tokens.clone()
    tokens3[0, 0] += 1.0  # real tokens must
    assert not torch.allclose(model(x, t, tokens3, mask)[0], out[0])


def test_condition_and_time_change_the_output():
    model = DiT(CFG, (1, 28, 28), text_dim=10)
    _perturb(model)
    x = torch.randn(1, 1, 28, 28)
    m = torch.ones(1, 1, dtype=torch.bool)
    a = model(x, torch.tensor([0.3]), torch.eye(10)[None, :1], m)
    b = model(x, torch.tensor([0.3]), torch.eye(10)[None, 1:2], m)
    c = model(x, torch.tensor([0.31]), torch.eye(10)[None, :1], m)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_invalid_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="patch_size"):
        DiT(ModelConfig(width=64, patch_size=5), (1, 28, 28), 10)
    with pytest.raises(ValueError, match="heads"):
        DiT(ModelConfig(width=64, heads=3), (1, 28, 28), 10)


def test_default_heads_and_param_count():
    assert ModelConfig(width=384).num_heads == 6
    model = DiT(ModelConfig(width=64, depth=1, patch_size=7), (1, 28, 28), 10)
    assert model.num_params() == sum(p.numel() for p in model.parameters()) > 0


def test_embeddings():
    emb = timestep_embedding(torch.tensor([0.0, 0.5]), 16)
    assert emb.shape == (2, 16)
    torch.testing.assert_close(emb[0, :8], torch.ones(8))  # cos(0)
    pos = sincos_2d(32, 3, 4)
    assert pos.shape == (12, 32)
    assert len({tuple(r.tolist()) for r in pos}) == 12  # every position distinct
