"""The figures ``evaluate`` reports for generated and edited items, against closed forms:
Frechet distance, mean pairwise distance and row-wise Pearson correlation."""

import math

import numpy as np
import pytest
import torch

from diffusionkit.evaluation import frechet_distance, mean_pairwise_distance, pearson


def whitened(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``n`` points in ``d`` dimensions whose sample mean is exactly 0 and sample covariance
    (``np.cov``, divisor n - 1) exactly the identity, so closed forms hold without sampling error."""
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x - x.mean(0)
    cov = x.T @ x / (n - 1)
    return x @ torch.linalg.inv(torch.linalg.cholesky(cov)).T


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(m)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def closed_form(mu_a, cov_a, mu_b, cov_b) -> float:
    """||mu_a - mu_b||^2 + tr(A + B - 2 (A^1/2 B A^1/2)^1/2), computed by eigendecompositions."""
    root_a = psd_sqrt(cov_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * psd_sqrt(root_a @ cov_b @ root_a)))


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x.clone()) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_a_mean_shift_is_its_squared_length():
    x = whitened(300, 4)
    shift = torch.tensor([3.0, -1.0, 0.5, 2.0], dtype=torch.float64)
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)  # 14.25
    assert frechet_distance(x.float(), (x + shift).float()) == pytest.approx(14.25, rel=1e-4)


def test_frechet_distance_of_scaled_gaussians():
    """Identity against diag(s^2) covariances (and a mean shift m): |m|^2 + sum (1 - s)^2."""
    x = whitened(400, 3, seed=2)
    scales = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)
    shift = torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64)
    expected = float(shift.square().sum() + (1 - scales).square().sum())  # 5 + 0.25 + 1 + 4
    assert frechet_distance(x, x * scales + shift) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(x * scales + shift, x) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_matches_the_closed_form_for_correlated_covariances():
    x = whitened(500, 5, seed=3)
    g = torch.Generator().manual_seed(4)
    a_map = torch.randn(5, 5, generator=g, dtype=torch.float64)
    b_map = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = x @ a_map.T + torch.randn(5, generator=g, dtype=torch.float64)
    b = whitened(500, 5, seed=5) @ b_map.T + torch.randn(5, generator=g, dtype=torch.float64)
    an, bn = a.numpy(), b.numpy()
    expected = closed_form(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert expected > 1.0
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_few_points_in_many_dimensions_is_finite():
    """Fewer items than feature dimensions give singular covariances (a small evaluation)."""
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(6, 32, generator=g), torch.randn(6, 32, generator=g) + 1.0
    distance = frechet_distance(a, b)
    assert math.isfinite(distance) and distance > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)  # sqrt of ~1e-16 eigenvalues
    an, bn = a.double().numpy(), b.double().numpy()
    expected = closed_form(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert distance == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_in_one_dimension():
    """(mu_a - mu_b)^2 + (s_a - s_b)^2 for one feature."""
    x = whitened(50, 1, seed=7)
    assert frechet_distance(x, 3 * x - 2) == pytest.approx(4.0 + 4.0, rel=1e-6)


def test_mean_pairwise_distance_on_known_points():
    triangle = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # sides 3, 4, 5
    assert mean_pairwise_distance(triangle) == pytest.approx(4.0)
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # 4 sides, 2 diagonals
    assert mean_pairwise_distance(square) == pytest.approx((4 + 2 * math.sqrt(2)) / 6)
    assert mean_pairwise_distance(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_distance(torch.randn(1, 3)) == 0.0
    assert mean_pairwise_distance(torch.empty(0, 3)) == 0.0
    assert mean_pairwise_distance(2 * triangle) == pytest.approx(8.0), "scales with the points"


def test_pearson_row_wise():
    x = torch.tensor([[0.0, 1.0, 2.0, 5.0], [3.0, -1.0, 4.0, 1.0]])
    assert pearson(x, 2 * x + 1).tolist() == pytest.approx([1.0, 1.0])
    assert pearson(x, -x).tolist() == pytest.approx([-1.0, -1.0])
    constant = torch.tensor([[2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    assert pearson(constant, x).tolist() == pytest.approx([0.0, pearson(constant[1:], x[1:]).item()])
    assert pearson(constant, x)[0].item() == 0.0 and pearson(x, constant)[0].item() == 0.0
    a, b = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]])
    assert pearson(a, b).item() == pytest.approx(0.5)  # covariance 0.5, variances 1
    assert pearson(x, 2 * x + 1).shape == (2,)


@pytest.mark.parametrize("time_axis, steps_are_items, setting, expected", [
    (0, False, "auto", False),  # rank 3 with a time axis is not enough: the modality must say so
    (0, True, "auto", True), (None, True, "auto", False), (None, False, True, True), (0, True, False, False)])
def test_per_step_judging_follows_what_the_modality_declares(time_axis, steps_are_items, setting, expected):
    from types import SimpleNamespace

    from diffusionkit.apps.evaluate_time import wants_per_step
    from tests.toy_modality import ToyModality

    class Declared(ToyModality):
        pass

    Declared.time_axis, Declared.steps_are_items = time_axis, steps_are_items
    assert wants_per_step(SimpleNamespace(modality=Declared(1, (4, 8, 8))), setting) is expected
