"""Weight block <-> conductance pairs (spec section 1)."""

import dataclasses

import numpy as np
import pytest
import torch

from aimc_runner.device.mapping import map_block, read_back


def test_round_trip_and_conductance_equations():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3))
    b = map_block(w, g_min_us=1.0, g_max_us=25.0, rows=8)
    s = 24.0 / np.abs(w).max()
    assert b.scale == pytest.approx(s)
    u = b.used
    np.testing.assert_allclose(b.g_pos[u], s * np.maximum(w, 0) + 1.0, rtol=1e-15)
    np.testing.assert_allclose(b.g_neg[u], s * np.maximum(-w, 0) + 1.0, rtol=1e-15)
    np.testing.assert_allclose(read_back(b), w, rtol=1e-12, atol=1e-14)
    # The largest |W| uses the full range exactly; nothing exceeds g_max.
    assert max(b.g_pos.max(), b.g_neg.max()) == 25.0
    assert b.g_pos.dtype == np.float64 and b.g_pos.shape == (8, 3)


def test_per_column_scaling_brings_every_column_to_g_max():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 4)) * np.array([1.0, 10.0, 0.01, 0.0])  # very different column ranges, one all-zero
    b = map_block(w, g_min_us=0.0, g_max_us=25.0, rows=8, per_column=True)
    col_max = np.abs(w).max(axis=0)
    np.testing.assert_allclose(b.scale[:3], 25.0 / col_max[:3], rtol=1e-15)
    assert b.scale[3] == 25.0  # all-zero column: the span, no division by zero
    u = b.used
    np.testing.assert_allclose(np.maximum(b.g_pos[u], b.g_neg[u]).max(axis=0)[:3], 25.0, rtol=1e-15)
    np.testing.assert_allclose(read_back(b), w, rtol=1e-12, atol=1e-14)
    # One column: the per-tile and per-column mappings are the same.
    one = map_block(w[:, :1], g_min_us=0.0, g_max_us=25.0, rows=8, per_column=True)
    ref = map_block(w[:, :1], g_min_us=0.0, g_max_us=25.0, rows=8)
    np.testing.assert_array_equal(one.g_pos, ref.g_pos)
    assert float(one.scale[0]) == ref.scale


def test_placement_center_and_top_unused_rows_are_zero_conductance():
    w = np.ones((3, 2))
    center = map_block(w, g_min_us=0.5, g_max_us=25.0, rows=8)
    assert center.row_offset == (8 - 3) // 2 == 2
    top = map_block(w, g_min_us=0.5, g_max_us=25.0, rows=8, placement="top")
    assert top.row_offset == 0
    for b in (center, top):
        mask = np.zeros(8, bool)
        mask[b.used] = True
        assert np.all(b.g_pos[~mask] == 0) and np.all(b.g_neg[~mask] == 0)
        assert np.all(b.g_neg[mask] == 0.5)  # g_min on the used rows only
    full = map_block(np.ones((8, 2)), g_min_us=0.0, g_max_us=25.0, rows=8)
    assert full.row_offset == 0


def test_placement_accepts_enum_like():
    class Placement:  # stands in for config.Placement without importing hydra
        value = "top"

    assert map_block(np.ones((2, 2)), g_min_us=0, g_max_us=25, rows=4, placement=Placement()).row_offset == 0


def test_all_zero_block_no_nan():
    b = map_block(np.zeros((4, 4)), g_min_us=0.0, g_max_us=25.0, rows=4)
    assert np.isfinite(b.scale) and b.scale > 0
    assert np.all(read_back(b) == 0)
    assert np.all(b.g_pos == 0) and np.all(b.g_neg == 0)


def test_torch_input_and_perturbed_read_back():
    w = torch.tensor([[0.5, -1.0], [0.25, 0.0]])
    b = map_block(w, g_min_us=0.0, g_max_us=20.0, rows=4)
    np.testing.assert_allclose(read_back(b), w.numpy(), atol=1e-7)
    b2 = dataclasses.replace(b, g_pos=b.g_pos * 0.5, g_neg=b.g_neg * 0.5)
    np.testing.assert_allclose(read_back(b2), 0.5 * w.numpy(), atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(w=np.ones((3, 2)), g_min_us=-1.0, g_max_us=25.0, rows=4), "g_min_us"),
        (dict(w=np.ones((3, 2)), g_min_us=25.0, g_max_us=25.0, rows=4), "g_max_us"),
        (dict(w=np.array([[np.nan, 1.0]]), g_min_us=0.0, g_max_us=25.0, rows=4), "w"),
        (dict(w=np.array([[np.inf, 1.0]]), g_min_us=0.0, g_max_us=25.0, rows=4), "w"),
        (dict(w=np.ones((5, 2)), g_min_us=0.0, g_max_us=25.0, rows=4), "rows"),
        (dict(w=np.ones(5), g_min_us=0.0, g_max_us=25.0, rows=8), "w"),
        (dict(w=np.ones((3, 2)), g_min_us=0.0, g_max_us=25.0, rows=4, placement="middle"), "placement"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    w = kwargs.pop("w")
    with pytest.raises(ValueError, match=f"`{name}`"):
        map_block(w, **kwargs)
