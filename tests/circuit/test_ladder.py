"""The ladder solvers against the dense nodal oracle, against each other, and against limits that need no oracle."""

from __future__ import annotations

import numpy as np
import pytest
from circuit_helpers import assert_close_to_set as _assert_close
from circuit_helpers import random_durations as _durations
from circuit_helpers import random_tile as _tile

from aimc_runner.circuit import column_charge, effective_conductance, time_stepped_charge, transfer_factors
from aimc_runner.circuit import _kernels
from aimc_runner.circuit.reference import column_charge_dense, solve_column
from aimc_runner.config import AdcSides, IdleRows, IrDropMethod


# ----------------------------------------------------------------------------------------------------------------
# Oracle


@pytest.mark.parametrize("rows", [1, 2, 7, 33])
@pytest.mark.parametrize("r_wire", [0.0, 0.15, 1.0, 300.0])
@pytest.mark.parametrize("adc_sides", ["south", "both"])
@pytest.mark.parametrize("idle_rows", ["hold", "float"])
def test_matches_dense_nodal_solve(rows, r_wire, adc_sides, idle_rows):
    gp, gn = _tile(rows, 4, seed=rows)
    n = _durations(3, rows, seed=rows)
    ref = column_charge_dense(gp, gn, n, r_wire_ohm=r_wire, idle_rows=idle_rows, adc_sides=adc_sides)
    kw = dict(r_wire_ohm=r_wire, idle_rows=idle_rows, adc_sides=adc_sides)
    _assert_close(column_charge(gp, gn, n, method="time_stepped", **kw), ref, 1e-10)
    if idle_rows == "hold":
        _assert_close(column_charge(gp, gn, n, method="effective", **kw), ref, 1e-10)
    assert np.all(ref[0] == 0)


def test_oracle_sees_the_ir_drop_and_the_idle_convention():
    """Guard against a vacuous oracle test: at 300 Ω the drop is large and float differs from hold."""
    gp, gn = _tile(7, 3, seed=3)
    n = _durations(3, 7, seed=3)
    ideal = column_charge_dense(gp, gn, n, r_wire_ohm=0.0)
    hold = column_charge_dense(gp, gn, n, r_wire_ohm=300.0)
    flt = column_charge_dense(gp, gn, n, r_wire_ohm=300.0, idle_rows="float")
    assert np.abs(hold - ideal).max() > 1e-3 * np.abs(ideal).max()
    assert np.abs(flt - hold).max() > 1e-4 * np.abs(ideal).max()


@pytest.mark.parametrize("adc_sides", ["south", "both"])
def test_effective_equals_time_stepped_on_512_rows(adc_sides):
    gp, gn = _tile(512, 5, seed=7)
    n = _durations(3, 512, seed=7, n_max=127)
    for r_wire in (0.15, 5.0):
        kw = dict(r_wire_ohm=r_wire, adc_sides=adc_sides)
        eff = column_charge(gp, gn, n, method="effective", **kw)
        ts = column_charge(gp, gn, n, method="time_stepped", **kw)
        _assert_close(ts, eff, 1e-9)


@pytest.mark.parametrize("idle_rows", ["hold", "float"])
def test_extreme_wire_resistance_stays_exact(idle_rows):
    """Far outside the physical range (g·r up to ~1e6 per segment) the homogeneous float sweep must not overflow."""
    gp, gn = _tile(100, 3, seed=11)
    n = _durations(2, 100, seed=11)
    for r_wire in (1e8, 1e12):
        kw = dict(r_wire_ohm=r_wire, idle_rows=idle_rows)
        _assert_close(time_stepped_charge(gp, gn, n, **kw), column_charge_dense(gp, gn, n, **kw), 1e-10)


# ----------------------------------------------------------------------------------------------------------------
# Limits without an oracle


@pytest.mark.parametrize("idle_rows", ["hold", "float"])
@pytest.mark.parametrize("adc_sides", ["south", "both"])
def test_zero_wire_resistance_is_the_ideal_product_exactly(idle_rows, adc_sides):
    # Dyadic conductances and dv so that every sum is exact in float64 whatever its order.
    rng = np.random.default_rng(0)
    gp = rng.integers(0, 100, (40, 6)) / 4.0
    gn = rng.integers(0, 100, (40, 6)) / 4.0
    n = rng.integers(-127, 128, (4, 40))
    ideal = 0.25 * 0.5 * (n.astype(float) @ (gp - gn))
    kw = dict(r_wire_ohm=0.0, dv_v=0.25, t_slot_ns=0.5, idle_rows=idle_rows, adc_sides=adc_sides)
    np.testing.assert_array_equal(column_charge(gp, gn, n, method="time_stepped", **kw), ideal)
    if idle_rows == "hold":
        np.testing.assert_array_equal(column_charge(gp, gn, n, **kw), ideal)
        np.testing.assert_array_equal(transfer_factors(gp, gn, r_wire_ohm=0.0, adc_sides=adc_sides), 1.0)


@pytest.mark.parametrize(
    "method, idle_rows", [("effective", "hold"), ("time_stepped", "hold"), ("time_stepped", "float")]
)
@pytest.mark.parametrize("r_wire", [0.15, 1e3, 1e5])
def test_single_cell_is_resistors_in_series(method, idle_rows, r_wire):
    """One node, half a segment to the ADC. The pair is a Norton source J = s·dv·(G+ - G-) with load g = G+ + G-;
    the node sits at u = J / (g + 2/r), so I = 2u/r = J / (1 + g·r/2). With µS and Ω: g·r/2·1e-6.
    For one device (G- = 0) this is dv / (1/G + r/2): the device and the half segment in series."""
    g_p, g_n, n, dv, t = 20.0, 3.0, -7, 0.2, 1.5
    q = column_charge(
        [[g_p]], [[g_n]], [n], r_wire_ohm=r_wire, dv_v=dv, t_slot_ns=t, method=method, idle_rows=idle_rows
    )
    expected = dv * n * t * (g_p - g_n) / (1 + (g_p + g_n) * r_wire / 2 * 1e-6)
    np.testing.assert_allclose(q, [expected], rtol=1e-14)


def test_kcl_in_the_oracle():
    rng = np.random.default_rng(1)
    gp, gn = rng.uniform(0, 25, 9), rng.uniform(0, 25, 9)
    on = rng.random(9) < 0.6
    s = np.where(on, rng.choice([-1.0, 1.0], 9), 0.0)
    for connected in (np.ones(9, bool), on):
        _, i_adc, i_cells = solve_column(gp, gn, 0.2 * s, -0.2 * s, connected, 50.0)
        np.testing.assert_allclose(i_cells.sum(), i_adc, rtol=1e-12)


@pytest.mark.parametrize("idle_rows", ["hold", "float"])
def test_kcl_in_the_ladder_solver(idle_rows):
    """One active set (every active row has |n| = 3): the cell currents from the ladder's back-substituted node
    potentials sum to the ADC current of the forward sweep and of time_stepped_charge, and the potentials match
    the dense solve."""
    rows, r_wire, dv = 20, 80.0, 0.2
    rng = np.random.default_rng(2)
    gp, gn = rng.uniform(0, 25, rows), rng.uniform(0, 25, rows)
    n = rng.choice([-3, 0, 3], rows)
    s = np.sign(n).astype(float)
    connected = (n != 0) if idle_rows == "float" else np.ones(rows, bool)
    load = np.where(connected, gp + gn, 0.0)
    j_src = s * dv * (gp - gn)
    u, i_adc = _kernels.column_potentials(load, j_src, r_wire * 1e-6)
    i_cells = j_src - load * u
    np.testing.assert_allclose(i_cells.sum(), i_adc, rtol=1e-12)
    q = time_stepped_charge(gp[:, None], gn[:, None], n, r_wire_ohm=r_wire, dv_v=dv, idle_rows=idle_rows)
    np.testing.assert_allclose(q, [3 * i_adc], rtol=1e-12)
    u_ref, i_ref, _ = solve_column(gp, gn, dv * s, -dv * s, connected, r_wire)
    np.testing.assert_allclose(u, u_ref, rtol=1e-10)
    np.testing.assert_allclose(i_adc, i_ref, rtol=1e-12)


@pytest.mark.parametrize("r_wire", [0.15, 10.0, 1e4])
def test_tau_in_unit_interval_and_monotone_toward_the_adc(r_wire):
    rows, cols = 64, 4
    gp, gn = np.full((rows, cols), 20.0), np.full((rows, cols), 5.0)
    tau = transfer_factors(gp, gn, r_wire_ohm=r_wire, adc_sides="both")
    assert np.all(tau > 0) and np.all(tau <= 1)
    # South-read (even) columns: row rows-1 is nearest the ADC; north-read (odd) columns: row 0.
    assert np.all(np.diff(tau[:, 0::2], axis=0) > 0)
    assert np.all(np.diff(tau[:, 1::2], axis=0) < 0)
    np.testing.assert_array_equal(tau[:, 1], tau[::-1, 0])
    g_eff = effective_conductance(gp, gn, r_wire_ohm=r_wire, adc_sides="both")
    np.testing.assert_array_equal(g_eff, tau * 15.0)


def test_segments_lumping():
    """Optional approximation: rows = segments is exact, one segment is a single node at the centre, and the error
    shrinks as segments grow."""
    rows = 64
    gp, gn = np.full((rows, 4), 20.0), np.full((rows, 4), 5.0)
    kw = dict(r_wire_ohm=20.0, adc_sides="both")
    exact = transfer_factors(gp, gn, **kw)
    np.testing.assert_array_equal(transfer_factors(gp, gn, segments=rows, **kw), exact)
    # One node carrying every cell, rows/2 segments (centre to last row, plus the half segment) from the ADC.
    one = transfer_factors(gp, gn, segments=1, **kw)
    np.testing.assert_allclose(one, 1 / (1 + rows * 25.0 * 20.0 * 1e-6 * rows / 2), rtol=1e-14)
    errors = [np.abs(transfer_factors(gp, gn, segments=s, **kw) - exact).max() for s in (4, 8, 16, 32)]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    n = _durations(2, rows, seed=1)
    np.testing.assert_allclose(
        column_charge(gp, gn, n, segments=7, **kw),
        0.2 * (n @ effective_conductance(gp, gn, segments=7, **kw)),
        rtol=1e-14,
    )
    for bad in (0, rows + 1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="`segments`"):
            transfer_factors(gp, gn, segments=bad, **kw)
    with pytest.raises(ValueError, match="`segments`"):
        column_charge(gp, gn, n, segments=8, method="time_stepped", **kw)


def test_float_equals_hold_when_all_pulses_are_equal():
    """With every |n| equal the active set is all rows or none: the two idle conventions are the same circuit."""
    gp, gn = _tile(30, 3, seed=5)
    n = np.array([[5] * 30, [-5] * 15 + [5] * 15])
    kw = dict(r_wire_ohm=200.0, method="time_stepped")
    _assert_close(column_charge(gp, gn, n, idle_rows="float", **kw), column_charge(gp, gn, n, **kw), 1e-13)


def test_v_read_shapes_and_enums():
    gp, gn = _tile(6, 3, seed=9)
    n = _durations(2, 6, seed=9)
    base = column_charge(gp, gn, n, r_wire_ohm=100.0)
    np.testing.assert_array_equal(column_charge(gp, gn, n, r_wire_ohm=100.0, v_read_v=0.9), base)
    np.testing.assert_array_equal(column_charge(gp, gn, n[1], r_wire_ohm=100.0), base[1])
    assert column_charge(gp, gn, np.zeros((0, 6), int), r_wire_ohm=1.0).shape == (0, 3)
    q = column_charge(
        gp, gn, n.astype(float), r_wire_ohm=100.0, idle_rows=IdleRows.hold, method=IrDropMethod.time_stepped,
        adc_sides=AdcSides.south, window_slots=8,
    )
    _assert_close(q, base, 1e-12)
    assert q.dtype == np.float64 and base.dtype == np.float64


# ----------------------------------------------------------------------------------------------------------------
# Bad input


def _call(**over):
    gp, gn = _tile(4, 2, seed=0)
    kw = dict(g_pos=gp, g_neg=gn, durations=np.array([[1, -2, 0, 3]]), r_wire_ohm=0.15)
    kw.update(over)
    return column_charge(kw.pop("g_pos"), kw.pop("g_neg"), kw.pop("durations"), **kw)


@pytest.mark.parametrize(
    "over, name",
    [
        (dict(g_pos=-np.ones((4, 2))), "g_pos"),
        (dict(g_neg=np.full((4, 2), np.nan)), "g_neg"),
        (dict(g_pos=np.full((4, 2), np.inf)), "g_pos"),
        (dict(g_pos=np.ones((4, 3))), "g_pos"),
        (dict(g_pos=np.ones(4)), "g_pos"),
        (dict(g_pos=np.full((4, 2), "a")), "g_pos"),
        (dict(r_wire_ohm=-1.0), "r_wire_ohm"),
        (dict(r_wire_ohm=float("nan")), "r_wire_ohm"),
        (dict(r_wire_ohm=None), "r_wire_ohm"),
        (dict(v_read_v=float("inf")), "v_read_v"),
        (dict(dv_v=-0.2), "dv_v"),
        (dict(t_slot_ns=0.0), "t_slot_ns"),
        (dict(t_slot_ns=float("nan"), method="time_stepped"), "t_slot_ns"),
        (dict(durations=np.array([[1, 2, 3]])), "durations"),
        (dict(durations=np.array([[0.5, 1, 2, 3]])), "durations"),
        (dict(durations=np.array([[np.nan, 1, 2, 3]])), "durations"),
        (dict(durations=np.array([[True, False, True, True]])), "durations"),
        (dict(durations=np.array([[1, 2, 3, 9]]), window_slots=8), "durations"),
        (dict(durations=np.array([[1e300, 2, 3, 0]])), "durations"),
        (dict(window_slots=-1), "window_slots"),
        (dict(window_slots="8"), "window_slots"),
        (dict(idle_rows="open"), "idle_rows"),
        (dict(method="spice"), "method"),
        (dict(adc_sides="north"), "adc_sides"),
        (dict(idle_rows="float"), "method"),
    ],
)
def test_bad_input_names_the_argument(over, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        _call(**over)


def test_effective_float_explains_why():
    with pytest.raises(ValueError, match="non-linear.*time_stepped"):
        _call(idle_rows=IdleRows.float, method="effective")


@pytest.mark.parametrize("fn", [transfer_factors, effective_conductance])
def test_bad_input_tau(fn):
    with pytest.raises(ValueError, match="`g_neg`"):
        fn(np.ones((3, 2)), -np.ones((3, 2)), r_wire_ohm=0.1)
    with pytest.raises(ValueError, match="`r_wire_ohm`"):
        fn(np.ones((3, 2)), np.ones((3, 2)), r_wire_ohm=float("inf"))
