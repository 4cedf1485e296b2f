"""The colour an image shows: the dominant colour name of its foreground pixels.

Colour accuracy asks whether "a green heart" came out green. The background is white (how the
emoji are drawn); every other pixel is foreground. Each foreground pixel is named from its
hue, saturation and value (HSV): grey-ish pixels (low saturation) are no hue, dark ones are
black, and the name of an image is the most common hue name among its colourful pixels — or
black when most of its foreground is dark. White and grey cannot be told from the background
and outlines this way, so they are not among the names judged (JUDGED).
"""

from __future__ import annotations

import torch

from ..utils.images import to_hsv

JUDGED = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black")
# Hue bins (degrees, upper bounds) of the colourful pixels; brown and pink are split off below.
HUES = ((18, "red"), (45, "orange"), (70, "yellow"), (170, "green"), (255, "blue"),
        (300, "purple"), (340, "pink"), (361, "red"))


def pixel_names(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """The index into JUDGED of each pixel's colour name (-1: no hue, too grey to name)."""
    names = torch.full_like(hue, -1, dtype=torch.long)
    lower = 0
    for upper, name in HUES:
        names[(hue >= lower) & (hue < upper)] = JUDGED.index(name)
        lower = upper
    warm = (names == JUDGED.index("red")) | (names == JUDGED.index("orange"))
    # Brown is a dull orange: Noto's brown is hue 15, saturation 0.54, value 0.72; its orange
    # and red are saturated and bright.
    names[warm & (hue >= 8) & ((value < 0.6) | ((saturation < 0.7) & (value < 0.85)))] = JUDGED.index("brown")
    names[(names == JUDGED.index("red")) & (saturation < 0.5)] = JUDGED.index("pink")
    names[(saturation < 0.3) | (value < 0.25)] = -1
    return names


def dominant_colours(images: torch.Tensor, background: float = 0.9) -> list[str]:
    """The colour name of each image in [-1, 1] (B, 3, H, W): black, the most common hue name
    of its colourful foreground pixels, or "none" (no foreground, or none of it colourful)."""
    hue, saturation, value = to_hsv(images)
    rgb_min = ((images.float() + 1) / 2).clamp(0, 1).min(1).values
    foreground = rgb_min < background  # white (every channel high) is the background
    names = pixel_names(hue, saturation, value)
    out = []
    for fg, dark, pix in zip(foreground, value < 0.4, names):
        colourful = pix[fg & (pix >= 0)]
        if fg.sum() == 0:
            out.append("none")
        elif (dark & fg).sum() > 0.5 * fg.sum():
            out.append("black")
        elif len(colourful) < 0.1 * fg.sum():
            out.append("none")
        else:
            out.append(JUDGED[int(torch.bincount(colourful, minlength=len(JUDGED)).argmax())])
    return out
