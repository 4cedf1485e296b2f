from t2i.data.filenames import author_suffixes, name_words, strip_author


def test_name_words_drop_digits_and_separators():
    assert name_words("star_95pt06step") == ["star"]
    assert name_words("gnome-fs-trash-empty") == ["gnome", "fs", "trash", "empty"]
    assert name_words("Saturn_Dan_Gerhards_01") == ["saturn", "dan", "gerhards"]
    assert name_words("table_tennis_omar_abo-na_01") == ["table", "tennis", "omar", "abo", "na"]


def test_authors_are_shared_endings_that_titles_do_not_contain():
    stems = [["saturn", "dan", "gerhards"], ["venus", "dan", "gerhards"], ["moon", "dan", "gerhards"],
             ["brazil", "flag"], ["chile", "flag"], ["flag", "of", "peru", "x", "y"], ["flag", "of", "chad", "x", "y"]]
    authors = author_suffixes(stems)
    assert ("dan", "gerhards") in authors and ("gerhards",) in authors
    assert ("flag",) not in authors  # "flag" begins titles too
    assert strip_author(["full", "moon", "dan", "gerhards"], authors) == ["full", "moon"]
    assert strip_author(["brazil", "flag"], authors) == ["brazil", "flag"]
    assert strip_author(["gerhards"], authors) == ["gerhards"]  # a title is never emptied
