import pytest

from t2i.text.spelling import Speller

CAPTIONS = ["a cotton t-shirt", "a dress", "a pair of sneakers", "sneakers", "a bag with handles",
            "sandals", "a coat", "a warm coat", "a cost", "things to carry"]


@pytest.fixture
def speller():
    return Speller(CAPTIONS, known=lambda word: False)


@pytest.mark.parametrize("typed, spelled", [
    ("a cotten t-shrit", "a cotton t-shirt"),  # a changed letter, two swapped ones
    ("a pair of sneekers", "a pair of sneakers"),
    ("a dres with a belt", "a dress with a belt"),  # a dropped letter
    ("a coatt", "a coat"),  # an added one
    ("A Dres, please!", "A Dress, please!"),  # capitals and punctuation kept
    ("a coet", "a coat"),  # "coat" and "cost" are both one edit away: the more frequent wins
])
def test_a_typo_becomes_the_caption_word_one_edit_away(speller, typed, spelled):
    assert speller(typed) == spelled


@pytest.mark.parametrize("prompt", [
    "a cotton t-shirt",  # caption words
    "thongs for the beach",  # an English word one edit from a caption word ("things")
    "jandals",  # one edit from "sandals", but typos rarely change the first letter
    "sandles",  # two edits from "sandals": too far (one from "handles", another first letter)
    "a bga",  # shorter than four letters
    "a qwertyuiop",  # nothing near
])
def test_words_that_are_not_typos_of_a_caption_word_stay(speller, prompt):
    assert speller(prompt) == prompt


def test_a_word_the_encoder_knows_stays():
    assert Speller(CAPTIONS, known=lambda word: word == "cotten")("a cotten t-shrit") == "a cotten t-shirt"
