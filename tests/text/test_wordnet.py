import pytest

from t2i.text import wordnet as wn_module
from t2i.text.wordnet import HYPERNYM, WordNet, load_wordnet, wordnet_root


def test_senses_lemmas_glosses_and_relations_are_read(tiny_wordnet):
    wn = tiny_wordnet
    assert [s.lemmas for s in wn.senses("kitty")] == [["pool", "kitty"], ["kitty", "kitty-cat", "puss"]]
    parka = wn.senses("anorak")[0]
    assert parka.definition == "a kind of heavy jacket" and "she wore" in parka.gloss
    assert [s.lemmas for s in wn.related(parka, HYPERNYM)] == [["coat"]]
    assert wn.senses("House_Cat")[0].lemmas == ["house cat", "domestic cat"]
    assert sorted(s.offset for s in wn.hyponyms(wn.senses("garment")[0], 2)) == [2, 3, 8, 10]
    assert wn.senses("jacket") == []


@pytest.mark.parametrize("word, forms", [
    ("anoraks", ["anorak"]), ("geese", ["goose"]), ("anorak", ["anorak"]), ("coats", ["coat"]),
    ("kitties", ["kitty"]), ("hoodies", []),
])
def test_base_forms_follow_wordnets_plural_rules_and_exceptions(tiny_wordnet, word, forms):
    assert tiny_wordnet.base_forms(word) == forms


def test_the_folder_comes_from_t2i_wordnet_or_debian(wordnet_folder, tmp_path, monkeypatch):
    folder = wordnet_folder
    monkeypatch.setenv("T2I_WORDNET", str(folder))
    assert wordnet_root() == folder
    load_wordnet.cache_clear()
    assert load_wordnet().senses("parka")[0].offset == 3
    monkeypatch.setenv("T2I_WORDNET", str(tmp_path / "empty"))
    load_wordnet.cache_clear()
    assert wordnet_root() is None and load_wordnet() is None
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        WordNet(tmp_path / "empty")
    load_wordnet.cache_clear()


@pytest.mark.skipif(not (wn_module.WORDNET / "data.noun").is_file(), reason="needs wordnet-base")
def test_wordnet_30_has_the_garments_the_bank_is_made_of():
    wn = WordNet(wn_module.WORDNET)
    assert "parka" in wn.senses("anorak")[0].lemmas
    assert [s.lemmas[0] for s in wn.related(wn.senses("plimsoll")[1], HYPERNYM)] == ["gym shoe"]
    assert wn.base_forms("trainers") == ["trainer"] and wn.senses("hoodie") == []
