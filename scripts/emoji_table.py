"""Build t2i/assets/emoji.json, the table behind `data.dataset=emoji`.

    python scripts/emoji_table.py     # needs Debian's unicode-data and PyPI's emoji; writes the asset

One row per emoji drawn by the dataset: the emoji, its Unicode (CLDR) name, its group and
subgroup, and its other names. Sources, all offline:
- Unicode's emoji-test.txt (Debian `unicode-data`, /usr/share/unicode/emoji): every
  fully-qualified emoji with its name, group and subgroup. Kept: everything except the skin-tone
  variants (the same picture five times over), the components (bare skin tones and hair
  styles) and the country and subdivision flags (hundreds of striped rectangles named after
  places: nothing a 32x32 model can draw from its name);
- the `emoji` package's short names and aliases (":smiley:" -> "smiley");
- Python's `unicodedata` name of a single code point ("SMILING FACE WITH OPEN MOUTH"), unless
  it names a colour the emoji does not show (U+2764 is "HEAVY BLACK HEART" and draws red).
Training needs none of them: it reads the table and the font. Running the script again with
the same sources gives the same file.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from t2i.data.emoji import COLOURS, TABLE  # noqa: E402

EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
SKIN_TONES = range(0x1F3FB, 0x1F400)
LEFT_OUT_SUBGROUPS = {"country-flag", "subdivision-flag"}


def read_emoji_test(path: Path) -> list[dict]:
    """Every fully-qualified emoji of emoji-test.txt with its name, group and subgroup."""
    rows, group, subgroup = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            points, rest = line.split(";", 1)
            status, comment = rest.split("#", 1)
            if status.strip() != "fully-qualified":
                continue
            name = comment.strip().split(" ", 2)[2]  # "😀 E1.0 grinning face"
            rows.append({"emoji": "".join(chr(int(p, 16)) for p in points.split()),
                         "name": name, "group": group, "subgroup": subgroup})
    return rows


def kept(row: dict) -> bool:
    return (row["group"] != "Component" and row["subgroup"] not in LEFT_OUT_SUBGROUPS
            and not any(ord(c) in SKIN_TONES for c in row["emoji"]))


def colours_in(text: str) -> set[str]:
    return {c for c in COLOURS if re.search(rf"\b{c}\b", text)}


def aliases(row: dict, emoji_data: dict) -> list[str]:
    """The emoji's other names, lower case, without the CLDR name itself."""
    found = []
    info = emoji_data.get(row["emoji"]) or emoji_data.get(row["emoji"].replace("\ufe0f", ""), {})
    for short in [info.get("en", "")] + list(info.get("alias", [])):
        found.append(short.strip(":").replace("_", " "))
    points = row["emoji"].replace("\ufe0f", "")
    if len(points) == 1:
        uname = unicodedata.name(points, "").lower()
        if uname and colours_in(uname) <= colours_in(row["name"]):
            found.append(uname)
    name = row["name"].lower()
    return [a for a in dict.fromkeys(a.lower().strip() for a in found) if a and a != name]


def build() -> list[dict]:
    import emoji
    rows = [r for r in read_emoji_test(EMOJI_TEST) if kept(r)]
    return [{**r, "aliases": aliases(r, emoji.EMOJI_DATA)} for r in rows]


def main() -> None:
    rows = build()
    TABLE.write_text(json.dumps(rows, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{TABLE}: {len(rows)} emoji, {len({r['group'] for r in rows})} groups, "
          f"{len({r['subgroup'] for r in rows})} subgroups")


if __name__ == "__main__":
    main()
