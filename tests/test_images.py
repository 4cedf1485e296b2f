import torch

from t2i.images import seed_rows


def test_seed_rows_turns_prompt_groups_into_seed_rows():
    # 2 prompts x 3 seeds, grouped by prompt as the pipeline returns them: value = 10 * p + s
    images = torch.tensor([0., 1, 2, 10, 11, 12]).view(6, 1, 1, 1)
    assert seed_rows(images, prompts=2).flatten().tolist() == [0, 10, 1, 11, 2, 12]
