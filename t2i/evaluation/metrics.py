"""Distances between sets of images in a feature space: the Frechet distance, k-NN precision
and recall, and Inception FID where torchmetrics and its weights can be had."""

from __future__ import annotations

from typing import Optional

import torch


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets a [N, D] and b [M, D]:
    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)). The trace of the matrix square root is
    computed as sum(sqrt(eig(S C_b S))) with S = C_a^(1/2), which is symmetric, so no general
    (complex) sqrtm is needed."""
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(ca)
    sqrt_ca = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(sqrt_ca @ cb @ sqrt_ca).clamp(min=0).sqrt().sum()
    return (mu @ mu + ca.trace() + cb.trace() - 2 * cross).item()


def _kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int = 2000) -> torch.Tensor:
    radii = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # k + 1: the nearest is the point itself
    return torch.cat(radii)


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
             chunk: int = 2000) -> torch.Tensor:
    """For each point, whether it lies in any ball (centre, radius)."""
    return torch.cat([(torch.cdist(points[i:i + chunk], centres) <= radii).any(1)
                      for i in range(0, len(points), chunk)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """k-NN manifold precision and recall (Kynkaanniemi et al. 2019): each set's manifold is the
    union of balls reaching every point's k-th nearest neighbour in that set. Precision is the
    fraction of generated points on the real manifold (are they realistic?); recall the
    fraction of real points on the generated manifold (is the variety covered?)."""
    precision = _covered(fake, real, _kth_neighbour_radius(real, k)).double().mean().item()
    recall = _covered(real, fake, _kth_neighbour_radius(fake, k)).double().mean().item()
    return precision, recall


def inception_fid(images: torch.Tensor, reference_images: torch.Tensor) -> tuple[Optional[float], str]:
    """Inception-v3 FID through torchmetrics when it and its weights can be had; otherwise
    None and the reason (offline machines carry on with the classifier-feature FD)."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        fid = FrechetInceptionDistance(feature=2048, normalize=True)
        rgb = lambda x: ((x + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)  # noqa: E731
        for i in range(0, len(reference_images), 500):
            fid.update(rgb(reference_images[i:i + 500]), real=True)
        for i in range(0, len(images), 500):
            fid.update(rgb(images[i:i + 500]), real=False)
        return fid.compute().item(), "torchmetrics FrechetInceptionDistance (2048-d, 299x299)"
    except Exception as e:  # missing package, weights download refused offline, ...
        return None, f"Inception FID unavailable here ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
