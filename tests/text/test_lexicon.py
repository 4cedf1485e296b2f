import pytest

from t2i.text.lexicon import Reader, WordReading, head_word, plural, rewrite, supplement

CAPTIONS = ["a parka", "a warm coat", "a coat for winter", "a cat", "a pool of water", "a garment to wear",
            "a garment for work", "a sweatshirt with a hood"]
LABELS = [0, 0, 0, 1, 2, 0, 1, 3]


def test_an_unknown_word_is_read_as_its_synonym_the_captions_use(tiny_wordnet):
    reader = Reader(CAPTIONS, wordnet=tiny_wordnet)
    assert reader("a zip-up anorak for winter") == (
        "a zip-up parka for winter", [WordReading("anorak", "parka", "another word for", "a kind of heavy jacket")])
    assert reader("two windcheaters")[0] == "two parkas"  # read from its singular, said in the plural
    assert reader("a warm coat") == ("a warm coat", [])  # known words stay
    assert str(reader("an anorak")[1][0]) == "anorak -> parka (another word for: a kind of heavy jacket)"
    assert rewrite("an anorak and a anorak", "anorak", "umbrella") == "an umbrella and an umbrella"


def test_the_encoder_picks_among_senses_and_wordnets_first_sense_wins_without_it(tiny_wordnet):
    first = Reader(CAPTIONS, wordnet=tiny_wordnet)
    assert first("a kitty")[0] == "a pool"  # sense 1: the stakes
    seen = []

    def closeness(a, b):  # stands in for the encoder: "a kitty" is nearer a cat than a pool
        seen.append(b)
        return [0.9 if "cat" in text else 0.2 for text in b]
    reader = Reader(CAPTIONS, closeness=closeness, wordnet=tiny_wordnet)
    read, (word,) = reader("a kitty")
    assert read == "a cat" and word.how == "a kind of" and seen == [["a pool", "a cat"]]


def test_a_word_the_encoder_has_whole_is_read_only_where_the_encoder_agrees(tiny_wordnet):
    whole = dict(one_token=lambda word: word == "kitty", wordnet=tiny_wordnet)
    assert Reader(CAPTIONS, **whole)("a kitty") == ("a kitty", [])  # no encoder to ask
    cosines = {("kitty", "cat"): 0.84, ("kitty", "pool"): 0.23}
    asked = []

    def closeness(a, b):
        asked.append((a, b))
        return [cosines.get((x, y), 0.9 if "cat" in y else 0.2) for x, y in zip(a, b)]
    read, (word,) = Reader(CAPTIONS, closeness=closeness, **whole)("a kitty")
    assert read == "a cat" and asked[0] == (["kitty", "kitty"], ["pool", "cat"])
    assert Reader(CAPTIONS, closeness=closeness, **whole)("a kitty to chase a mouse")[0] == "a cat to chase a mouse"
    assert Reader(CAPTIONS, closeness=closeness, **whole)("a coat for a kitty") == ("a coat for a kitty", [])
    cosines[("kitty", "cat")] = 0.6  # below AGREEMENT: left to the encoder
    assert Reader(CAPTIONS, closeness=closeness, **whole)("a kitty") == ("a kitty", [])
    assert Reader(CAPTIONS, closeness=closeness, **whole)("An anorak")[0] == "A parka"  # in pieces: read


def test_a_kind_of_thing_no_class_is_says_so_and_is_not_rewritten(tiny_wordnet):
    reader = Reader(CAPTIONS, LABELS, wordnet=tiny_wordnet)  # "garment" is in two classes' captions
    read, (word,) = reader("a hat for the sun")
    assert read == "a hat for the sun" and word.read_as == ""
    assert str(word) == "hat: a kind of garment that no class's captions name: headdress that protects the head"
    assert reader("a hat-shaped cat") == ("a hat-shaped cat", [])  # not the head word: nothing to say
    assert Reader(CAPTIONS, wordnet=tiny_wordnet)("a hat")[0] == "a garment"  # no classes: nothing is shared
    said = Reader([*CAPTIONS, "a bowler"], [*LABELS, 2], wordnet=tiny_wordnet)  # a kind of hat is a class
    assert said("a hat") == ("a hat", [])


def test_supplement_words_read_by_their_meaning_in_caption_words(tiny_wordnet):
    reader = Reader(CAPTIONS, one_token=lambda word: True, wordnet=tiny_wordnet)  # read even if whole
    read, (word,) = reader("a grey hoodie")
    assert read == "a grey hooded sweatshirt" and word.how == "means" and word.gloss == supplement()["hoodie"]
    assert reader("two hoodies")[0] == "two hooded sweatshirts"
    assert all(w == w.lower() and means for w, means in supplement().items())


def test_without_wordnet_only_the_supplement_reads(monkeypatch, tmp_path):
    from t2i.text.wordnet import load_wordnet
    monkeypatch.setenv("T2I_WORDNET", str(tmp_path / "none"))
    load_wordnet.cache_clear()
    try:
        reader = Reader(CAPTIONS)
        assert reader.missing and "wordnet-base" in reader.missing
        assert reader("an anorak") == ("an anorak", []) and reader("a hoodie")[0] == "a hooded sweatshirt"
    finally:
        load_wordnet.cache_clear()


@pytest.mark.parametrize("prompt, head", [("a wool hat for winter", "hat"), ("a hat", "hat"), ("The hat", "hat"),
                                          ("something to wear", None), ("something cosy to wear", None),
                                          ("for you", None)])
def test_the_head_word_is_the_last_before_the_first_modifier(prompt, head):
    assert head_word(prompt) == head


@pytest.mark.parametrize("one, many", [("parka", "parkas"), ("flip-flop", "flip-flops"), ("dress", "dresses"),
                                       ("hooded sweatshirt", "hooded sweatshirts"), ("body", "bodies"),
                                       ("sneakers", "sneakers"), ("day", "days")])
def test_plural(one, many):
    assert plural(one) == many
