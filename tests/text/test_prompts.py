import pytest

from t2i.text.prompts import MAX_PROMPT_CHARS, clean_prompt


def test_control_and_bidi_characters_are_taken_out():
    assert clean_prompt("a\x00 red\x1b[31m\tcircle\n") == "a red [31m circle"
    assert clean_prompt("\u202ea blue\u2066 square\u200f") == "a blue square"
    assert clean_prompt("  a   bag  ") == "a bag"
    assert clean_prompt("un café 👜") == "un café 👜"  # letters and symbols are kept


def test_too_long_or_not_text_is_refused_with_the_reason():
    assert clean_prompt("x" * MAX_PROMPT_CHARS) == "x" * MAX_PROMPT_CHARS
    with pytest.raises(ValueError, match="1,001 characters long; the limit is 1,000"):
        clean_prompt("x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(ValueError, match="must be text, not bytes"):
        clean_prompt(b"a bag")
    with pytest.raises(ValueError, match="the limit is 5"):
        clean_prompt("a long bag", limit=5)
