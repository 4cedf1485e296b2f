import numpy as np
import torch

from t2i.data import ImageDataset, caption_grid, describe, format_description
from t2i.text.captions import FASHION_MNIST


def _captioned():
    images = torch.zeros(6, 3, 8, 8, dtype=torch.uint8)
    images[:3, 0] = 255  # three red images, three black
    captions = [["a red square", "red"], ["a red square"], ["red"], ["a black square"],
                ["black"], ["a black square", "black", "dark"]]
    return ImageDataset(images, torch.full((6,), -1), captions=captions, skipped={"too small": 2})


def test_describe_counts_captions_pixels_and_skips():
    info = describe(_captioned())
    assert info["images"] == 6 and info["shape"] == [3, 8, 8] and info["classes"] is None
    assert info["pixel_mean"] == [0.5, 0.0, 0.0]
    assert info["captions_per_image"] == [1, 1.5, 3] and info["distinct_captions"] == 5
    assert info["words_per_caption"] == [1, 1.8, 3] and info["common_words"][0] == ("a", 2)
    text = format_description(info)
    assert "6 of shape (3, 8, 8)" in text and "2 too small" in text and "5 distinct" in text


def test_describe_a_labelled_dataset_by_its_class_captions():
    data = ImageDataset(torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 1, 9]),
                        classes=FASHION_MNIST)
    info = describe(data)
    assert info["classes"] == list(FASHION_MNIST.names) and info["skipped"] == {}
    per_class = [len(c) for c in FASHION_MNIST.training_captions()]
    assert info["captions_per_image"][0] == min(per_class[0], per_class[1], per_class[9])
    assert "skipped while reading: none" in format_description(info)


def test_caption_grid_puts_each_caption_under_its_image():
    grid = caption_grid(_captioned(), n=6, columns=3, cell=64)
    assert grid.size == (3 * 72, 2 * (64 + 40 + 8))
    arr = np.asarray(grid)
    # Every cell shows its 8x8 image scaled 8x; red and black images both appear.
    cells = [arr[r * 112 + 4 + 32, c * 72 + 4 + 32] for r in range(2) for c in range(3)]
    assert {tuple(v) for v in cells} == {(255, 0, 0), (0, 0, 0)}
    # and text (dark pixels) beneath each.
    assert all((arr[r * 112 + 4 + 64 + 2: r * 112 + 108, c * 72: c * 72 + 72] < 128).any()
               for r in range(2) for c in range(3))
