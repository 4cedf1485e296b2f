import pytest
import torch


@pytest.fixture
def perturb():
    """Moves every parameter off its initial value, so zero-initialised outputs stop being 0."""
    def perturb(model):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return perturb
