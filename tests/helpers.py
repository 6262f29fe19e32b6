"""Assertions shared by the test modules."""

import torch


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """Max-norm error ≤ tol relative to the max-norm of ``expected`` (exact when expected is 0)."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.shape == expected.shape, (tuple(actual.shape), tuple(expected.shape))
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    error = (actual - expected).abs().max().item() if actual.numel() else 0.0
    scale = expected.abs().max().item() if expected.numel() else 0.0
    assert error <= tol * scale, f"error {error:.3e} > {tol:.0e} x scale {scale:.3e}"
