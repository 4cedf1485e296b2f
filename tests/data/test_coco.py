import json

import pytest
from PIL import Image

from t2i.data import DataError
from t2i.data.captioned import open_image_cache
from t2i.data.coco import coco_rows
from t2i.sections import DataConfig


def _coco(root, split, images, captions):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / split).mkdir(exist_ok=True)
    for i, (name, colour) in enumerate(images, start=1):
        Image.new("RGB", (40, 30), colour).save(root / split / name)
    (root / "annotations" / f"captions_{split}.json").write_text(json.dumps({
        "info": {}, "images": [{"id": i, "file_name": n, "width": 40, "height": 30}
                               for i, (n, _) in enumerate(images, start=1)],
        "annotations": [{"id": 100 + k, "image_id": i, "caption": c} for k, (i, c) in enumerate(captions)]}))


def test_a_coco_folder_trains_as_it_is(tmp_path):
    root = tmp_path / "coco"
    _coco(root, "train2017", [("000000000001.jpg", "red"), ("000000000002.jpg", "blue")],
          [(1, "A red wall."), (2, "A blue sky"), (1, "Something red"), (7, "no such image")])
    _coco(root, "val2017", [("000000000009.jpg", "green")], [(1, "A green field")])
    rows = coco_rows(root)  # the training split only, with paths into its folder
    assert rows == [{"file": "train2017/000000000001.jpg", "caption": "A red wall."},
                    {"file": "train2017/000000000002.jpg", "caption": "A blue sky"},
                    {"file": "train2017/000000000001.jpg", "caption": "Something red"}]
    data = open_image_cache(DataConfig(dataset="folder", data_dir=str(root), image_size=8,
                                       cache_dir=str(tmp_path / "cache")), progress=False)
    assert len(data) == 2 and data.captions == [["A red wall.", "Something red"], ["A blue sky"]]
    assert data.images[0, 0].min() > 200 and data.images[1, 2].min() > 200  # red, then blue
    assert coco_rows(tmp_path) is None  # no annotations: not a COCO folder


def test_a_damaged_annotation_file_is_a_clear_error(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_train2014.json").write_text('{"images": []}')
    with pytest.raises(DataError, match="not a COCO caption file"):
        coco_rows(tmp_path)
