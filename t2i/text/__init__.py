"""The text path: captions of labelled datasets (`captions`), encoders that turn prompts into
tokens and a mask (`encoders`, the ENCODERS registry), a finite caption set encoded once
(`caption_table`), and reading a free-text prompt: its unknown words in a dictionary (`wordnet`,
`lexicon`), spelling, then grounding it on the nearest training captions (`spelling`,
`retrieval`).
"""

from .caption_table import CaptionTable
from .captions import Classes, caption, normalize_prompt
from .encoders import ENCODERS, build_text_encoder, encode_captions_once
from .lexicon import Reader, WordReading
from .retrieval import CaptionIndex
from .spelling import Speller

__all__ = ["ENCODERS", "CaptionIndex", "CaptionTable", "Classes", "Reader", "Speller", "WordReading",
           "build_text_encoder", "caption", "encode_captions_once", "normalize_prompt"]
