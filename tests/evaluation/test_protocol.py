
import torch

from t2i.evaluation import (
    Reference,
)


def test_reference_floor_is_real_data_scoring_well():
    ref = Reference(n=500, reference_images=2000)
    floor = ref.floor
    assert floor["accuracy"] > 0.85 and floor["fd"] < 5
    assert floor["precision"] > 0.6 and floor["recall"] > 0.6
    noise = torch.rand(500, 1, 28, 28) * 2 - 1
    scores = ref.score(noise, torch.zeros(500, dtype=torch.long))
    assert scores["fd"] > 10 * floor["fd"] and scores["precision"] < 0.1
