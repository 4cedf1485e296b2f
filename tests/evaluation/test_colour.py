import torch

from t2i.evaluation import dominant_colours

SOLID = {"red": (220, 30, 30), "orange": (255, 140, 0), "yellow": (250, 220, 30),
         "green": (40, 170, 60), "blue": (30, 90, 220), "purple": (140, 60, 200),
         "pink": (255, 150, 190), "brown": (130, 80, 40), "black": (20, 20, 20)}


def _images(rgbs, size=8):
    return (torch.tensor(rgbs).float() / 127.5 - 1)[:, :, None, None].expand(-1, 3, size, size).clone()


def test_solid_colours_are_named():
    assert dominant_colours(_images(list(SOLID.values()))) == list(SOLID)


def test_the_white_background_is_ignored_and_blank_images_have_no_colour():
    image = _images([(255, 255, 255)], size=16)
    assert dominant_colours(image) == ["none"]
    image[:, :, 6:10, 6:10] = _images([SOLID["green"]], size=4)
    image[:, :, 0, 0] = _images([SOLID["blue"]], size=1)[:, :, 0, 0]  # a stray pixel loses
    assert dominant_colours(image) == ["green"]
    grey = _images([(128, 128, 128)])
    assert dominant_colours(grey) == ["none"]
