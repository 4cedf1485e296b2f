import pytest
import torch

from t2i.utils.images import from_hsv, seed_rows, to_hsv


def test_seed_rows_turns_prompt_groups_into_seed_rows():
    # 2 prompts x 3 seeds, grouped by prompt as the pipeline returns them: value = 10 * p + s
    images = torch.tensor([0., 1, 2, 10, 11, 12]).view(6, 1, 1, 1)
    assert seed_rows(images, prompts=2).flatten().tolist() == [0, 10, 1, 11, 2, 12]


def test_hsv_of_known_colours_and_back():
    # pure red, yellow, blue, a half-saturated green, grey; in [-1, 1]
    rgb = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0.5, 1, 0.5], [0.5, 0.5, 0.5]]).T
    images = (rgb * 2 - 1).view(1, 3, 1, 5)
    hue, saturation, value = to_hsv(images)
    assert hue.flatten()[:4].tolist() == [0, 60, 240, 120]
    assert torch.allclose(saturation.flatten(), torch.tensor([1, 1, 1, 0.5, 0]))
    assert torch.allclose(value.flatten(), torch.tensor([1, 1, 1, 1, 0.5]))
    assert torch.allclose(from_hsv(hue, saturation, value), images, atol=1e-6)
    random = torch.rand(2, 3, 4, 4) * 2 - 1
    assert torch.allclose(from_hsv(*to_hsv(random)), random, atol=1e-5)


def test_a_full_disk_leaves_no_partial_png(tmp_path, monkeypatch):
    import errno

    from PIL import Image

    from t2i.utils.images import save_png

    def full(self, fp, *args, **kwargs):
        open(fp, "wb").write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(OSError, match="no space left on the device writing .*grid.png"):
        save_png(Image.new("RGB", (4, 4)), tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []
