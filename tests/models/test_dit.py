import dataclasses

import pytest
import torch

from t2i.models.dit import DiT, sincos_2d, timestep_embedding
from t2i.sections import ModelConfig

CFG = ModelConfig(width=64, depth=2, heads=2, patch_size=4)


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


def test_masked_tokens_are_ignored(perturb):
    model = DiT(CFG, (1, 28, 28), text_dim=8)
    perturb(model)
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


def test_condition_and_time_change_the_output(perturb):
    model = DiT(CFG, (1, 28, 28), text_dim=10)
    perturb(model)
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


def test_linear_attention_is_the_kernelised_formula():
    from t2i.models.dit import linear_attention

    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 4)
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    weights = phi_q @ phi_k.transpose(-1, -2)  # (B, H, N, M), the quadratic form
    expected = (weights / weights.sum(-1, keepdim=True)) @ v
    torch.testing.assert_close(linear_attention(q, k, v), expected, rtol=1e-4, atol=1e-5)


def test_linear_attention_dit_runs_and_differs_from_softmax(perturb):
    cfg = ModelConfig(width=64, depth=2, heads=2, patch_size=2, attention="linear")
    torch.manual_seed(0)
    linear = DiT(cfg, (1, 16, 16), text_dim=10)
    torch.manual_seed(0)
    soft = DiT(ModelConfig(width=64, depth=2, heads=2, patch_size=2), (1, 16, 16), text_dim=10)
    perturb(linear)
    soft.load_state_dict(linear.state_dict())
    args = (torch.randn(2, 1, 16, 16), torch.rand(2), torch.randn(2, 1, 10), torch.ones(2, 1, dtype=torch.bool))
    assert linear(*args).shape == (2, 1, 16, 16)
    assert not torch.allclose(linear(*args), soft(*args))
    with pytest.raises(ValueError, match="attention"):
        DiT(ModelConfig(attention="sparse"), (1, 16, 16), text_dim=10)


def grown_from(plain_cfg, cfg, new_part, perturb):
    """A trained model (`plain_cfg`) and one with a new part (`cfg`) that loads its weights: only
    `new_part` is missing, and untrained it changes nothing. Returns both and an input."""
    plain = DiT(plain_cfg, (1, 28, 28), text_dim=8)
    perturb(plain)
    grown = DiT(cfg, (1, 28, 28), text_dim=8)
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(f"{new_part}.") for k in missing)
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    tokens, mask = torch.randn(2, 3, 8), torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(grown(x, t, tokens, mask), plain(x, t, tokens, mask))
    return plain, grown, (x, t, tokens, mask)


def test_text_stream_starts_as_the_identity_then_refines_the_tokens(perturb):
    plain, stream, (x, t, tokens, mask) = grown_from(CFG, dataclasses.replace(CFG, text_stream=True),
                                                     "text_blocks", perturb)
    perturb(stream.text_blocks)
    out = stream(x, t, tokens, mask)
    assert not torch.allclose(out, plain(x, t, tokens, mask))
    garbage = tokens.clone()
    garbage[~mask] = 100.0  # the stream is per token: padding still changes nothing
    torch.testing.assert_close(stream(x, t, garbage, mask), out)


def test_without_pooled_text_only_cross_attention_carries_the_text(perturb):
    model = DiT(dataclasses.replace(CFG, pooled_text=False), (1, 28, 28), text_dim=8)
    assert model.text_pool is None and not any(k.startswith("text_pool") for k in model.state_dict())
    perturb(model)
    x, t, mask = torch.randn(1, 1, 28, 28), torch.rand(1), torch.ones(1, 2, dtype=torch.bool)
    tokens = torch.randn(1, 2, 8)
    out = model(x, t, tokens, mask)
    assert not torch.allclose(model(x, t, tokens + 1, mask), out)  # the text still matters ...
    for block in model.blocks:  # ... through cross-attention alone: without it, not at all
        block.cross.proj.weight.data.zero_()
        block.cross.proj.bias.data.zero_()
    torch.testing.assert_close(model(x, t, tokens + 1, mask), model(x, t, tokens, mask))


def test_text_positions_tell_the_order_of_the_words(perturb):
    """Plain cross-attention is blind to the order of the tokens (a set); with text positions,
    "red circle blue square" and "blue square red circle" differ."""
    x, t, mask = torch.randn(1, 1, 28, 28), torch.rand(1), torch.ones(1, 4, dtype=torch.bool)
    words = torch.randn(1, 4, 8)
    swapped = words[:, [2, 3, 0, 1]]
    for positions in (False, True):
        model = DiT(dataclasses.replace(CFG, text_positions=positions, pooled_text=False), (1, 28, 28), 8)
        perturb(model)
        same = torch.allclose(model(x, t, words, mask), model(x, t, swapped, mask), atol=1e-6)
        assert same != positions


def test_text_layers_start_as_the_identity_then_let_a_word_read_the_others(perturb):
    """The refiner (model.text_layers): untrained, the model with positions alone; trained, a
    refined word depends on the other words (self-attention), never on the padding."""
    _, refined, (_, _, tokens, mask) = grown_from(dataclasses.replace(CFG, text_positions=True),
                                                  dataclasses.replace(CFG, text_layers=2), "text_layers", perturb)
    perturb(refined.text_layers)
    context = refined.text_proj(tokens)
    words = refined.text_layers[0](context, mask)
    moved = context.clone()
    moved[0, 1] += 1.0  # the second word of the first prompt ...
    assert not torch.allclose(refined.text_layers[0](moved, mask)[0, 0], words[0, 0])  # ... reaches the first
    garbage = context.clone()
    garbage[~mask] = 100.0
    torch.testing.assert_close(refined.text_layers[0](garbage, mask)[mask], words[mask])
    with pytest.raises(Exception, match="text_layers"):
        dataclasses.replace(CFG, text_layers=-1)


def test_joint_attention_reads_the_text_in_self_attention_and_ignores_padding(perturb):
    model = DiT(dataclasses.replace(CFG, text_attention="joint", pooled_text=False), (1, 28, 28), text_dim=8)
    assert not any(".cross." in k for k in model.state_dict())
    assert model.num_params() < DiT(CFG, (1, 28, 28), text_dim=8).num_params()
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    tokens, mask = torch.randn(2, 3, 8), torch.tensor([[True, True, False], [True, False, False]])
    assert torch.count_nonzero(model(x, t, tokens, mask)) == 0  # adaLN-Zero start, as ever
    perturb(model)
    out = model(x, t, tokens, mask)
    assert out.shape == x.shape
    garbage = tokens.clone()
    garbage[~mask] = 100.0
    torch.testing.assert_close(model(x, t, garbage, mask), out)
    moved = tokens.clone()
    moved[0, 1] += 1.0  # without pooled text, the words reach the image through attention alone
    changed = model(x, t, moved, mask)
    assert not torch.allclose(changed[0], out[0]) and torch.allclose(changed[1], out[1])


def test_joint_attention_needs_softmax_attention_and_no_text_stream():
    from t2i.fields import ConfigError
    for bad in (dict(attention="linear"), dict(text_stream=True)):
        with pytest.raises(ConfigError, match="joint"):
            dataclasses.replace(CFG, text_attention="joint", **bad)


def test_checkpoints_from_before_the_parts_had_names_still_load():
    """0.1.0 wrote nn.Sequential indices (`mlp.0`, `ada.1`); they load into the named parts."""
    import re

    def legacy(state):
        renamed = {}
        for k, v in state.items():
            k = re.sub(r"(mlp|embed)\.fc1\.", r"\1.0.", re.sub(r"(mlp|embed)\.fc2\.", r"\1.2.", k))
            renamed[re.sub(r"(ada|text_pool)\.proj\.", r"\1.1.", k)] = v
        return renamed

    cfg = dataclasses.replace(CFG, text_stream=True)
    model = DiT(cfg, (1, 16, 16), text_dim=10, two_times=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    old = legacy(model.state_dict())
    assert {"blocks.0.mlp.0.weight", "blocks.0.ada.1.bias", "t_embed.2.weight", "h_embed.0.weight",
            "text_pool.1.weight", "final_ada.1.bias", "text_blocks.0.mlp.2.weight"} <= set(old)
    fresh = DiT(cfg, (1, 16, 16), text_dim=10, two_times=True)
    fresh.load_state_dict(old)  # strict: every key found, none left over
    x, t = torch.randn(2, 1, 16, 16), torch.rand(2)
    tokens, mask = torch.randn(2, 3, 10), torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(fresh(x, t, tokens, mask), model(x, t, tokens, mask))
