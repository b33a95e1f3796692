"""Random tiles, pulse lengths and a set-relative tolerance shared by the circuit tests."""

from __future__ import annotations

import numpy as np


def random_tile(rows, cols, seed, g_max=25.0):
    rng = np.random.default_rng(seed)
    gp = rng.uniform(0, g_max, (rows, cols))
    gn = rng.uniform(0, g_max, (rows, cols))
    gp[rng.random((rows, cols)) < 0.2] = 0.0  # some empty devices, as the weight mapping produces
    return gp, gn


def random_durations(batch, rows, seed, n_max=8):
    rng = np.random.default_rng(seed + 1)
    n = rng.integers(-n_max, n_max + 1, (batch, rows))
    n[0] = 0  # an all-zero token: no charge
    return n


def assert_close_to_set(actual, expected, rtol):
    """Relative to the largest entry of the set, so that a near-zero entry of signed terms is not over-weighted."""
    scale = np.abs(expected).max(initial=0.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)
