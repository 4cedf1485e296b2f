import pytest
import torch

from t2i.text import caption_table
from t2i.text.caption_table import CaptionTable, within_table_limit
from t2i.text.encoders import PretrainedTextEncoder


def _encoded(lengths, dim=3):
    """(tokens, mask) of captions with these real lengths; padding filled with junk."""
    length = max(lengths)
    mask = torch.arange(length)[None] < torch.tensor(lengths)[:, None]
    tokens = torch.randn(len(lengths), length, dim)
    return torch.where(mask[..., None], tokens, torch.full_like(tokens, 99.0)), mask


def test_lookup_returns_each_captions_own_tokens_padded_with_masked_zeros():
    a, b = _encoded([2, 5]), _encoded([1, 3, 4])
    table = CaptionTable.pack(list("vwxyz"), [a, b])
    assert len(table.tokens) == 2 + 5 + 1 + 3 + 4  # packed: no padding stored
    tokens, mask = table.lookup(table.rows(["x", "w", "v"]))
    assert tokens.shape == (3, 5, 3) and mask.sum(1).tolist() == [1, 5, 2]
    torch.testing.assert_close(tokens[0, :1], b[0][0, :1])
    torch.testing.assert_close(tokens[1], a[0][1])
    torch.testing.assert_close(tokens[2, :2], a[0][0, :2])
    assert (tokens[~mask] == 0).all()
    # Trimmed to the longest caption asked for.
    assert table.lookup(table.rows(["x"]))[0].shape == (1, 1, 3)


def test_rows_is_none_when_any_prompt_is_missing():
    table = CaptionTable.pack(["a", "b"], [_encoded([1, 2])])
    assert table.rows(["b", "a"]).tolist() == [1, 0]
    assert table.rows(["a", "c"]) is None


def test_pack_refuses_a_count_mismatch_and_load_round_trips(tmp_path):
    with pytest.raises(ValueError, match="3 encodings for 2 captions"):
        CaptionTable.pack(["a", "b"], [_encoded([1, 2, 3])])
    table = CaptionTable.pack(["a", "b", "c"], [_encoded([1, 2, 3])])
    table.save(tmp_path / "t.safetensors", {"encoder": "x"})
    again = CaptionTable.load(tmp_path / "t.safetensors", ["a", "b", "c"])
    for rows in (torch.tensor([2, 0]), torch.tensor([1])):
        for got, want in zip(again.lookup(rows), table.lookup(rows)):
            torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="3 encodings for 2 captions"):
        CaptionTable.load(tmp_path / "t.safetensors", ["a", "b"])


def test_a_cut_short_table_file_is_encoded_again(tmp_path):
    path = tmp_path / "t.safetensors"
    built = []

    def build():
        built.append(1)
        return CaptionTable.pack(["a", "b"], [_encoded([1, 2])])
    first, hit = CaptionTable.cached(path, ["a", "b"], build, {})
    assert not hit and CaptionTable.cached(path, ["a", "b"], build, {})[1] and len(built) == 1
    path.write_bytes(path.read_bytes()[:40])  # a copy cut short
    again, hit = CaptionTable.cached(path, ["a", "b"], build, {})
    assert not hit and len(built) == 2
    torch.testing.assert_close(again.tokens, CaptionTable.load(path, ["a", "b"]).tokens)
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]  # no temporary file left


def test_table_limit(monkeypatch):
    monkeypatch.setattr(caption_table, "MAX_CAPTIONS", 3)
    assert within_table_limit(["a", "b", "c"])
    assert not within_table_limit(["a", "b", "c", "d"]) and not within_table_limit([])


def test_a_looked_up_batch_equals_encoding_it_afresh(tiny_text_models):
    """The whole point: a table lookup hands the backbone exactly what the encoder would."""
    captions = [f"a photo of {'a very ' * (i % 5)}long shoe number {i}" for i in range(40)]
    e = PretrainedTextEncoder(str(tiny_text_models["bert"]), batch=16)
    e.precompute(captions)
    fresh = PretrainedTextEncoder(str(tiny_text_models["bert"]))
    batch = [captions[7], captions[3], captions[33]]
    for got, want in zip(e.encode(batch), fresh.encode(batch)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
