"""What a prompt may be before any encoder reads it: text, at most MAX_PROMPT_CHARS long, with
control characters and bidirectional-override marks taken out.

Prompts come from command lines, files and web requests. A control character (a NUL, an escape
sequence) means nothing to a text encoder but can garble a terminal or a log; a bidi override
(U+202E and kin) makes a prompt print differently from what the model read. Both are removed,
whitespace runs become one space. A prompt longer than the limit is refused rather than cut: the
part a cut would keep is rarely what its writer meant, and an encoder reads at most a few hundred
tokens of it anyway.
"""

from __future__ import annotations

import re
import unicodedata

MAX_PROMPT_CHARS = 1000
# Explicit embeddings, overrides and isolates, and the implicit marks (LRM, RLM, ALM).
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def clean_prompt(prompt, limit: int = MAX_PROMPT_CHARS) -> str:
    """`prompt` without control and bidi characters, whitespace collapsed; a ValueError that
    says what is wrong for a prompt that is not text or is longer than `limit` characters."""
    if not isinstance(prompt, str):
        raise ValueError(f"a prompt must be text, not {type(prompt).__name__}")
    if len(prompt) > limit:
        raise ValueError(f"a prompt is {len(prompt):,} characters long; the limit is {limit:,}: "
                         f"shorten it (it begins {prompt[:30]!r})")
    kept = "".join(" " if unicodedata.category(c) == "Cc" else c for c in prompt if c not in BIDI)
    return re.sub(r"\s+", " ", kept).strip()
