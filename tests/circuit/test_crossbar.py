"""The 2-D crossbar solver (row- and column-wire resistance) against a dense nodal solve of the whole tile, against
the 1-D ladder, and against limits that need no oracle."""

from __future__ import annotations

import numpy as np
import pytest
from circuit_helpers import assert_close_to_set as _assert_close
from circuit_helpers import random_durations as _durations
from circuit_helpers import random_tile as _tile

from aimc_runner.circuit import column_charge, effective_conductance, transfer_factors
from aimc_runner.circuit import crossbar
from aimc_runner.circuit.crossbar import column_charge_2d, effective_conductance_2d
from aimc_runner.circuit.reference import column_charge_dense_2d, effective_conductance_dense_2d, solve_crossbar

SIZES = [(1, 1), (1, 3), (3, 1), (7, 5), (33, 8)]


# ----------------------------------------------------------------------------------------------------------------
# Oracle


@pytest.mark.parametrize("rows, cols", SIZES)
@pytest.mark.parametrize("r_row", [0.0, 0.15, 1.0, 300.0])
@pytest.mark.parametrize("adc_sides", ["south", "both"])
def test_effective_matches_dense_nodal_solve(rows, cols, r_row, adc_sides):
    gp, gn = _tile(rows, cols, seed=rows * 100 + cols)
    for r_wire in (0.15, 300.0):
        kw = dict(r_wire_ohm=r_wire, r_row_ohm=r_row, adc_sides=adc_sides)
        ref = effective_conductance_dense_2d(gp, gn, **kw)
        for solver in ("nested", "splu"):
            _assert_close(effective_conductance_2d(gp, gn, solver=solver, **kw), ref, 1e-10)


@pytest.mark.parametrize("rows, cols", SIZES)
@pytest.mark.parametrize("r_row", [0.0, 0.15, 1.0, 300.0])
@pytest.mark.parametrize("adc_sides", ["south", "both"])
@pytest.mark.parametrize("idle_rows", ["hold", "float"])
def test_charge_matches_dense_nodal_solve(rows, cols, r_row, adc_sides, idle_rows):
    gp, gn = _tile(rows, cols, seed=rows * 100 + cols)
    n = _durations(3, rows, seed=rows)
    kw = dict(r_wire_ohm=300.0, r_row_ohm=r_row, idle_rows=idle_rows, adc_sides=adc_sides)
    ref = column_charge_dense_2d(gp, gn, n, **kw)
    _assert_close(column_charge_2d(gp, gn, n, method="time_stepped", **kw), ref, 1e-10)
    if idle_rows == "hold":
        _assert_close(column_charge_2d(gp, gn, n, method="effective", **kw), ref, 1e-10)
    assert np.all(ref[0] == 0)


@pytest.mark.parametrize("idle_rows", ["hold", "float"])
def test_zero_column_resistance_matches_dense_nodal_solve(idle_rows):
    gp, gn = _tile(7, 5, seed=4)
    n = _durations(3, 7, seed=4)
    kw = dict(r_wire_ohm=0.0, r_row_ohm=300.0, idle_rows=idle_rows, adc_sides="both")
    _assert_close(column_charge_2d(gp, gn, n, method="time_stepped", **kw), column_charge_dense_2d(gp, gn, n, **kw),
                  1e-10)


def test_oracle_sees_the_row_drop_and_the_idle_convention():
    """Guard against a vacuous oracle test: at 300 Ω per row segment the row drop is far above the tolerance, and
    float differs from hold."""
    gp, gn = _tile(7, 5, seed=3)
    n = _durations(3, 7, seed=3)
    no_row = column_charge_dense_2d(gp, gn, n, r_wire_ohm=300.0, r_row_ohm=0.0)
    hold = column_charge_dense_2d(gp, gn, n, r_wire_ohm=300.0, r_row_ohm=300.0)
    flt = column_charge_dense_2d(gp, gn, n, r_wire_ohm=300.0, r_row_ohm=300.0, idle_rows="float")
    assert np.abs(hold - no_row).max() > 1e-3 * np.abs(no_row).max()
    assert np.abs(flt - hold).max() > 1e-4 * np.abs(no_row).max()
    # The oracle's r_row = 0 is the 1-D oracle's circuit (via the ladder, checked against it in test_ladder.py).
    _assert_close(no_row, column_charge(gp, gn, n, r_wire_ohm=300.0), 1e-10)


def test_kcl():
    """Current out of the drivers = current into the ADCs, in the oracle and in the sparse network."""
    gp, gn = _tile(9, 6, seed=1)
    rng = np.random.default_rng(1)
    on = rng.random(9) < 0.6
    s = np.where(on, rng.choice([-1.0, 1.0], 9), 0.0)
    for connected in (np.ones(9, bool), on):
        i_adc, i_drv, _ = solve_crossbar(gp, gn, 0.2 * s, -0.2 * s, connected, r_wire_ohm=50.0, r_row_ohm=20.0,
                                         adc_sides="both")
        # Driver currents are differences across 0.1 MS half segments: compare at the scale of the summed terms.
        np.testing.assert_allclose(i_drv.sum(), i_adc.sum(), rtol=0, atol=1e-11 * np.abs(i_drv).sum())
        net = crossbar._network(gp * connected[:, None], gn * connected[:, None], np.arange(6) % 2 == 1, 50.0, 20.0)
        v = 0.2 * s[:, None]
        x = crossbar._factor(net.a).solve(net.rhs(v, -v))[:, 0]
        i_drv_net = net.g_drv * (v[:, 0] - x[net.p[:, 0]]) + net.g_drv * (-v[:, 0] - x[net.q[:, 0]])
        np.testing.assert_allclose(i_drv_net.sum(), net.adc_currents(x[:, None]).sum(), rtol=0,
                                   atol=1e-10 * np.abs(i_drv_net).sum())
        _assert_close(net.adc_currents(x[:, None])[:, 0], i_adc, 1e-10)


# ----------------------------------------------------------------------------------------------------------------
# The two paths and the two solvers


@pytest.mark.parametrize("adc_sides", ["south", "both"])
def test_effective_equals_time_stepped_and_nested_equals_splu(adc_sides):
    gp, gn = _tile(64, 24, seed=7)
    n = _durations(3, 64, seed=7, n_max=127)
    for r_wire, r_row in ((0.15, 0.15), (5.0, 2.0)):
        kw = dict(r_wire_ohm=r_wire, r_row_ohm=r_row, adc_sides=adc_sides)
        nested = effective_conductance_2d(gp, gn, solver="nested", **kw)
        _assert_close(nested, effective_conductance_2d(gp, gn, solver="splu", **kw), 1e-10)
        eff = column_charge_2d(gp, gn, n, method="effective", **kw)
        _assert_close(column_charge_2d(gp, gn, n, method="time_stepped", **kw), eff, 1e-9)
        np.testing.assert_allclose(eff, 0.2 * (n @ nested), rtol=1e-13, atol=1e-13 * np.abs(eff).max())


# ----------------------------------------------------------------------------------------------------------------
# Limits without an oracle


@pytest.mark.parametrize("adc_sides", ["south", "both"])
def test_zero_row_resistance_is_the_ladder(adc_sides):
    gp, gn = _tile(40, 24, seed=2)
    n = _durations(3, 40, seed=2)
    kw = dict(r_wire_ohm=0.15, adc_sides=adc_sides)
    ladder = effective_conductance(gp, gn, **kw)
    _assert_close(effective_conductance_2d(gp, gn, r_row_ohm=0.0, **kw), ladder, 1e-12)
    for idle_rows in ("hold", "float"):
        _assert_close(column_charge_2d(gp, gn, n, r_row_ohm=0.0, idle_rows=idle_rows, method="time_stepped", **kw),
                      column_charge(gp, gn, n, idle_rows=idle_rows, method="time_stepped", **kw), 1e-12)
    # Continuity: the 2-D solve departs from the ladder linearly in r_row (about 4e-3 relative per Ω here).
    for solver in ("nested", "splu"):
        tiny = effective_conductance_2d(gp, gn, r_row_ohm=1e-9, solver=solver, **kw)
        _assert_close(tiny, ladder, 1e-10)
        assert np.abs(tiny - ladder).max() > 0


def test_both_resistances_zero_is_the_ideal_product():
    rng = np.random.default_rng(0)
    gp = rng.integers(0, 100, (9, 6)) / 4.0
    gn = rng.integers(0, 100, (9, 6)) / 4.0
    np.testing.assert_array_equal(effective_conductance_2d(gp, gn, r_wire_ohm=0.0, r_row_ohm=0.0), gp - gn)


@pytest.mark.parametrize("r_wire, r_row", [(0.15, 0.15), (1e3, 3e3), (1e5, 1e4), (0.0, 500.0)])
@pytest.mark.parametrize("method, idle_rows",
                         [("effective", "hold"), ("time_stepped", "hold"), ("time_stepped", "float")])
def test_single_cell_is_resistors_in_series(r_wire, r_row, method, idle_rows):
    """One cell: each device in series with its half row segment, G' = G / (1 + G·r_row/2), feeding the node that
    half a column segment joins to the ADC: I = dv·(G+' - G-') / (1 + (G+' + G-')·r_wire/2). µS·Ω = 1e-6."""
    g_p, g_n, n, dv, t = 20.0, 3.0, -7, 0.2, 1.5
    q = column_charge_2d([[g_p]], [[g_n]], [n], r_wire_ohm=r_wire, r_row_ohm=r_row, dv_v=dv, t_slot_ns=t,
                         method=method, idle_rows=idle_rows)
    gp1, gn1 = (g / (1 + g * r_row / 2 * 1e-6) for g in (g_p, g_n))
    expected = dv * n * t * (gp1 - gn1) / (1 + (gp1 + gn1) * r_wire / 2 * 1e-6)
    np.testing.assert_allclose(q, [expected], rtol=1e-12)


def test_zero_column_resistance_is_the_transposed_ladder():
    """With ideal columns every column node is its ADC node: each row wire is a ladder driven from the west, loaded
    by its devices to ground. By reciprocity the current through device j is G_j times the ladder's τ for a
    current injected at j and collected at the driver, i.e. the column ladder turned by 90° (driver = ADC)."""
    gp, gn = _tile(12, 30, seed=6)
    g = effective_conductance_2d(gp, gn, r_wire_ohm=0.0, r_row_ohm=50.0, adc_sides="both")

    def tau_row(dev):  # ladder rows = tile columns, far end first (east), the driver after the last
        return transfer_factors(dev[:, ::-1].T, np.zeros(dev.shape[::-1]), r_wire_ohm=50.0).T[:, ::-1]

    _assert_close(g, gp * tau_row(gp) - gn * tau_row(gn), 1e-12)


def test_large_row_resistance_limit():
    """r_row → ∞ opens the row wires: only the half segment at the driver limits the current, which all flows
    through column 0 (the other row-wire nodes float, so column 0 is unloaded: τ → 1)."""
    gp, _ = _tile(10, 6, seed=8)
    gp[:, 0] = np.linspace(5, 25, 10)
    r_row = 1e12
    g = effective_conductance_2d(gp, np.zeros_like(gp), r_wire_ohm=0.15, r_row_ohm=r_row, adc_sides="both")
    np.testing.assert_allclose(g[:, 0] * r_row / 2e6, 1.0, rtol=1e-6)
    assert np.abs(g[:, 1:]).max() < 1e-6 * np.abs(g[:, 0]).min()


@pytest.mark.parametrize("r_row", [0.15, 10.0, 1e3])
def test_row_drop_grows_toward_the_open_end(r_row):
    """Uniform single-ended devices, ideal columns: every device sees less of the drive the farther it is from the
    west-edge driver; the effective weights fall monotonically with the column index and stay within (0, G]."""
    rows, cols = 4, 64
    gp = np.full((rows, cols), 20.0)
    g = effective_conductance_2d(gp, np.zeros_like(gp), r_wire_ohm=0.0, r_row_ohm=r_row)
    assert np.all(np.diff(g, axis=1) < 0)
    assert np.all((g > 0) & (g < 20.0))


def test_differential_weight_can_flip_sign():
    """The G+ and G- devices hang on different row wires: a wire loaded by larger devices sags more, so with a
    strong row drop a positive weight far from the driver reads back negative (no 1-D τ can do that)."""
    gp, gn = np.full((2, 64), 20.0), np.full((2, 64), 5.0)
    g = effective_conductance_2d(gp, gn, r_wire_ohm=0.0, r_row_ohm=1e3)
    assert np.all(g[:, 0] > 0) and np.all(g[:, -1] < 0)


def test_float_equals_hold_when_all_pulses_are_equal():
    gp, gn = _tile(12, 5, seed=5)
    n = np.array([[5] * 12, [-5] * 6 + [5] * 6])
    kw = dict(r_wire_ohm=200.0, r_row_ohm=100.0, method="time_stepped")
    _assert_close(column_charge_2d(gp, gn, n, idle_rows="float", **kw), column_charge_2d(gp, gn, n, **kw), 1e-12)


def test_shapes_and_v_read():
    gp, gn = _tile(6, 3, seed=9)
    n = _durations(2, 6, seed=9)
    kw = dict(r_wire_ohm=100.0, r_row_ohm=10.0)
    base = column_charge_2d(gp, gn, n, **kw)
    np.testing.assert_array_equal(column_charge_2d(gp, gn, n, v_read_v=0.9, **kw), base)
    np.testing.assert_array_equal(column_charge_2d(gp, gn, n[1], **kw), base[1])
    assert column_charge_2d(gp, gn, np.zeros((0, 6), int), **kw).shape == (0, 3)
    assert column_charge_2d(gp, gn, np.zeros((0, 6), int), method="time_stepped", **kw).shape == (0, 3)
    assert base.dtype == np.float64


# ----------------------------------------------------------------------------------------------------------------
# Bad input


def _call(**over):
    gp, gn = _tile(4, 2, seed=0)
    kw = dict(g_pos=gp, g_neg=gn, durations=np.array([[1, -2, 0, 3]]), r_wire_ohm=0.15, r_row_ohm=0.15)
    kw.update(over)
    return column_charge_2d(kw.pop("g_pos"), kw.pop("g_neg"), kw.pop("durations"), **kw)


@pytest.mark.parametrize(
    "over, name",
    [
        (dict(g_pos=-np.ones((4, 2))), "g_pos"),
        (dict(g_neg=np.full((4, 2), np.nan)), "g_neg"),
        (dict(g_pos=np.ones((4, 3))), "g_pos"),
        (dict(r_row_ohm=-1.0), "r_row_ohm"),
        (dict(r_row_ohm=float("nan")), "r_row_ohm"),
        (dict(r_row_ohm=None), "r_row_ohm"),
        (dict(r_wire_ohm=float("inf")), "r_wire_ohm"),
        (dict(dv_v=0.0), "dv_v"),
        (dict(t_slot_ns=-1.0), "t_slot_ns"),
        (dict(v_read_v=float("nan")), "v_read_v"),
        (dict(durations=np.array([[1, 2, 3]])), "durations"),
        (dict(durations=np.array([[1, 2, 3, 9]]), window_slots=8), "durations"),
        (dict(idle_rows="open"), "idle_rows"),
        (dict(method="spice"), "method"),
        (dict(adc_sides="north"), "adc_sides"),
        (dict(solver="dense"), "solver"),
        (dict(idle_rows="float"), "method"),
    ],
)
def test_bad_input_names_the_argument(over, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        _call(**over)


def test_bad_input_effective():
    with pytest.raises(ValueError, match="`r_row_ohm`"):
        effective_conductance_2d(np.ones((3, 2)), np.ones((3, 2)), r_wire_ohm=0.1, r_row_ohm=-0.1)
    with pytest.raises(ValueError, match="`g_neg`"):
        effective_conductance_2d(np.ones((3, 2)), -np.ones((3, 2)), r_wire_ohm=0.1, r_row_ohm=0.1)
