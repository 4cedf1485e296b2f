import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from t2i.data import DataError, load_dataset
from t2i.data.captioned import (
    CaptionedDataset,
    image_cache_path,
    open_image_cache,
    to_array,
)
from t2i.sections import DataConfig


def test_resize_and_centre_crop_known_answer():
    # 32x16: a red quarter, a green half, a blue quarter. The shorter side is already 16,
    # so the centre crop keeps the green half exactly.
    img = np.zeros((16, 32, 3), dtype=np.uint8)
    img[:, :8, 0] = 255
    img[:, 8:24, 1] = 255
    img[:, 24:, 2] = 255
    out = to_array(Image.fromarray(img), 16, 3)
    assert out.shape == (3, 16, 16) and (out[1] == 255).all() and (out[0] == 0).all()
    # Transparent pixels become white; grayscale keeps one channel.
    clear = Image.new("RGBA", (20, 30), (255, 0, 0, 0))
    assert (to_array(clear, 8, 3) == 255).all()
    assert to_array(Image.new("L", (40, 20), 100), 8, 1).shape == (1, 8, 8)


@pytest.fixture
def folder(tmp_path):
    """Five good images in several modes and sizes, one corrupt, one empty, one missing."""
    root = tmp_path / "pics"
    root.mkdir()
    Image.new("RGB", (40, 30), "red").save(root / "red.png")
    Image.new("RGBA", (20, 20), (0, 0, 255, 255)).save(root / "blue.png")
    Image.new("L", (64, 64), 128).save(root / "gray.jpg")
    Image.new("P", (24, 24)).save(root / "palette.png")
    Image.new("RGB", (16, 48), "green").save(root / "tall.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (root / "empty.jpg").write_bytes(b"")
    rows = [("red.png", "a red square"), ("red.png", "something red"), ("blue.png", "blue"),
            ("gray.jpg", "gray"), ("palette.png", "black"), ("tall.png", "a green bar"),
            ("corrupt.png", "broken"), ("empty.jpg", "nothing"), ("missing.png", "gone")]
    (root / "captions.jsonl").write_text("".join(json.dumps({"file": f, "caption": c}) + "\n"
                                                 for f, c in rows))
    return root


def folder_config(root, tmp_path, **kw):
    return DataConfig(dataset="folder", data_dir=str(root), image_size=16,
                      cache_dir=str(tmp_path / "cache"), **kw)


def test_folder_skips_bad_images_and_groups_captions(folder, tmp_path, caplog):
    cfg = folder_config(folder, tmp_path)
    with caplog.at_level(logging.WARNING):
        data = load_dataset(cfg)
    assert isinstance(data, CaptionedDataset) and isinstance(data.images, np.memmap)
    assert len(data) == 5 and data.shape == (3, 16, 16) and data.classes is None
    assert data.captions[0] == ["a red square", "something red"]
    # (a missing file was counted as unreadable before skips had reasons of their own)
    assert "skipped 3 of 8 images: 2 unreadable, 1 missing file" in caplog.text
    manifest = json.loads((image_cache_path(cfg) / "manifest.json").read_text())
    assert manifest["skipped"] == {"unreadable": 2, "missing file": 1}
    x, labels = data.batch(torch.tensor([0, 4]))
    assert x.shape == (2, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x[0, :, 8, 8], torch.tensor([1.0, -1.0, -1.0]))  # red
    assert labels.tolist() == [-1, -1]
    with pytest.raises(DataError, match="no test split"):
        load_dataset(cfg, "test")


def test_folder_cache_is_reused_until_the_source_changes(folder, tmp_path):
    cfg = folder_config(folder, tmp_path)
    load_dataset(cfg)
    stamp = (image_cache_path(cfg) / "images.u8").stat().st_mtime_ns
    load_dataset(cfg)
    assert (image_cache_path(cfg) / "images.u8").stat().st_mtime_ns == stamp
    with open(folder / "captions.jsonl", "a") as f:
        f.write(json.dumps({"file": "blue.png", "caption": "more blue"}) + "\n")
    assert load_dataset(cfg).captions[1] == ["blue", "more blue"]


def test_csv_captions_and_grayscale(folder, tmp_path):
    (folder / "captions.jsonl").unlink()
    (folder / "captions.csv").write_text("image,text\nred.png,red\ngray.jpg,\"gray, flat\"\n")
    data = load_dataset(folder_config(folder, tmp_path, channels=1))
    assert data.shape == (1, 16, 16) and data.captions == [["red"], ["gray, flat"]]


def test_folder_errors_say_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(folder_config(tmp_path / "nowhere", tmp_path))
    with pytest.raises(DataError, match=r"captions.jsonl or captions.csv, no COCO captions_\*.json and no images"):
        load_dataset(folder_config(tmp_path, tmp_path))
    (tmp_path / "captions.jsonl").write_text(json.dumps({"file": "x.png", "words": "x"}) + "\n")
    with pytest.raises(DataError, match="caption_column"):
        load_dataset(folder_config(tmp_path, tmp_path))


@pytest.fixture
def hf_dir(tmp_path):
    """A Hugging Face dataset on disk (one parquet file with an Image column), one image
    corrupt: the path `datasets.load_dataset` takes for a hub id, without the hub."""
    import io

    import datasets

    def png(color):
        buf = io.BytesIO()
        Image.new("RGB", (20, 20), color).save(buf, format="PNG")
        return {"bytes": buf.getvalue(), "path": None}
    images = [png("red"), {"bytes": b"garbage", "path": None}, png("blue"), png("white")]
    ds = datasets.Dataset.from_dict(
        {"image": images, "text": ["red", "bad", "blue", "white"]},
        features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")}))
    root = tmp_path / "hf-data"
    root.mkdir()
    ds.to_parquet(str(root / "train.parquet"))
    return root


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_dataset_by_path_with_a_corrupt_image(hf_dir, tmp_path, streaming):
    cfg = DataConfig(dataset="hf", hf_name=str(hf_dir), image_size=8, streaming=streaming,
                     cache_dir=str(tmp_path / "cache"))
    data = load_dataset(cfg)
    assert len(data) == 3 and data.captions == [["red"], ["blue"], ["white"]]
    x, _ = data.batch(torch.tensor([1]))
    torch.testing.assert_close(x[0, :, 4, 4], torch.tensor([-1.0, -1.0, 1.0]))
    sub = open_image_cache(DataConfig(dataset="hf", hf_name=str(hf_dir), image_size=8, subset=1,
                                      streaming=streaming, cache_dir=str(tmp_path / "cache")))
    assert sub.captions == [["red"]]


def test_hf_dataset_errors(tmp_path, hf_dir):
    with pytest.raises(DataError, match="hf_name"):
        load_dataset(DataConfig(dataset="hf"))
    with pytest.raises(DataError, match="no caption column 'prompt'"):
        load_dataset(DataConfig(dataset="hf", hf_name=str(hf_dir), caption_column="prompt",
                                cache_dir=str(tmp_path)))


@pytest.mark.parametrize("caption_column", ["", "json.prompt"])
def test_webdataset_style_rows_jpg_and_json_prompt(tmp_path, caption_column):
    """The text-to-image-2M layout: an image column `jpg` and the caption inside a `json` dict."""
    root = tmp_path / "wds"
    root.mkdir()
    Image.new("RGB", (12, 12), "red").save(root / "0.jpg")
    (root / "captions.jsonl").write_text(json.dumps({"jpg": "0.jpg", "json": {"prompt": "a red tile",
                                                                             "width": 12}}) + "\n")
    cfg = DataConfig(dataset="folder", data_dir=str(root), image_size=8, caption_column=caption_column,
                     cache_dir=str(tmp_path / "cache"))
    assert load_dataset(cfg).captions == [["a red tile"]]


def test_every_kind_of_bad_row_and_file_is_skipped_and_counted(tmp_path, monkeypatch):
    import os

    from t2i.data import captioned

    root = tmp_path / "hostile"
    root.mkdir()
    Image.new("RGB", (20, 20), "red").save(root / "good.png")
    Image.new("RGB", (20, 20), "blue").save(tmp_path / "outside.png")  # beside the folder
    (root / "link.png").symlink_to(tmp_path / "outside.png")  # a symlink that leaves it
    os.mkfifo(root / "fifo.png")  # opening it would block forever
    Image.new("L", (3000, 20), 255).save(root / "strip.png")  # a long strip: crop, not blow up
    Image.new("L", (400, 400), 0).save(root / "huge.png")
    monkeypatch.setattr(captioned, "MAX_PIXELS", 100_000)  # huge.png is 160,000 pixels
    lines = [json.dumps({"file": "good.png", "caption": "a red square"}),
             json.dumps({"file": "strip.png", "caption": "a white strip"}),
             json.dumps({"caption": "no file"}), json.dumps({"file": "good.png"}),
             json.dumps(["not", "an", "object"]), json.dumps({"file": "good.png", "caption": 5}),
             json.dumps({"file": 7, "caption": "numeric file"}), "{not json",
             json.dumps({"file": "../outside.png", "caption": "escape"}),
             json.dumps({"file": str(tmp_path / "outside.png"), "caption": "absolute"}),
             json.dumps({"file": "link.png", "caption": "symlink out"}),
             json.dumps({"file": "fifo.png", "caption": "a fifo"}),
             json.dumps({"file": "gone.png", "caption": "missing"}),
             json.dumps({"file": "huge.png", "caption": "too many pixels"})]
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    cfg = folder_config(root, tmp_path)
    data = load_dataset(cfg)
    assert len(data) == 2 and data.captions == [["a red square"], ["a white strip"]]
    skipped = json.loads((image_cache_path(cfg) / "manifest.json").read_text())["skipped"]
    assert skipped == {"bad row": 6, "outside the folder": 3, "not a regular file": 1,
                       "missing file": 1, "too large": 1}
    # Nothing from outside the folder reached the cache: blue is nowhere in it.
    x, _ = data.batch(torch.arange(2))
    assert not ((x[:, 2] > 0.9) & (x[:, 0] < -0.9)).any()


def test_a_folder_without_captions_is_captioned_from_its_file_names(tmp_path):
    root = tmp_path / "clipart"
    names = ["animals/birds/blue_bird_nicu_buculei_01.png", "animals/dog_nicu_buculei_01.png",
             "food/red_apple_nicu_buculei_02.png", "shapes/star_95pt06step.png",
             "shapes/flag_of_chile_anna_b_01.png", "shapes/flag_of_peru_anna_b_01.png", "notes.txt"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 10), "blue").save(root / name) if name.endswith(".png") else (root / name).write_text("x")
    data = load_dataset(folder_config(root, tmp_path))
    assert data.captions == [["blue bird", "blue bird (animals, birds)"], ["dog", "dog (animals)"],
                             ["red apple", "red apple (food)"], ["flag of chile", "flag of chile (shapes)"],
                             ["flag of peru", "flag of peru (shapes)"], ["star", "star (shapes)"]]


@pytest.mark.parametrize("damage", ["cut", "manifest"])
def test_a_damaged_image_cache_is_rebuilt(folder, tmp_path, damage):
    cfg = folder_config(folder, tmp_path)
    first = load_dataset(cfg).images.copy()
    path = image_cache_path(cfg)
    if damage == "cut":
        with open(path / "images.u8", "r+b") as f:
            f.truncate(100)
    else:
        (path / "manifest.json").write_text("{not json")
    np.testing.assert_array_equal(load_dataset(cfg).images, first)  # rebuilt, not a traceback
