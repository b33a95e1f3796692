"""The ladder model against an ngspice transient simulation of the same circuit (spec 3.2)."""

from __future__ import annotations


import numpy as np
import pytest

from aimc_runner.circuit import column_charge
from aimc_runner.circuit.crossbar import column_charge_2d
from aimc_runner.circuit.spice import SpiceError, run_netlist, spice_column_charge, write_netlist


def _case(rows, cols, seed, batch=2):
    rng = np.random.default_rng(seed)
    gp = rng.uniform(0, 25, (rows, cols))
    gn = rng.uniform(0, 25, (rows, cols))
    gp[0, 0] = 0.0  # an empty device is left out of the netlist
    n = rng.integers(-8, 9, (batch, rows))
    n[0, 0] = 0
    n[-1, -1] = 8  # a pulse that lasts the whole window
    return gp, gn, n


@pytest.mark.parametrize(
    "rows, cols, r_wire, idle_rows, adc_sides",
    [
        (3, 2, 0.15, "hold", "south"),
        (8, 3, 0.15, "hold", "both"),
        (8, 3, 500.0, "hold", "both"),
        (5, 2, 2000.0, "hold", "south"),
        (8, 3, 500.0, "float", "both"),
        (4, 2, 2000.0, "float", "south"),
        (4, 2, 0.0, "float", "both"),
    ],
)
def test_model_matches_ngspice(ngspice, rows, cols, r_wire, idle_rows, adc_sides):
    gp, gn, n = _case(rows, cols, seed=rows * 10 + cols)
    kw = dict(r_wire_ohm=r_wire, idle_rows=idle_rows, adc_sides=adc_sides)
    spice = spice_column_charge(gp, gn, n, **kw)
    model = column_charge(gp, gn, n, method="time_stepped", **kw)
    scale = np.abs(model).max()
    np.testing.assert_allclose(spice, model, rtol=1e-5, atol=1e-5 * scale)
    if r_wire >= 500:  # the comparison is not vacuous: the drop is far above the tolerance
        ideal = column_charge(gp, gn, n, r_wire_ohm=0.0)
        assert np.abs(ideal - model).max() > 1e-2 * scale


@pytest.mark.parametrize(
    "r_wire, r_row, idle_rows, adc_sides",
    [
        (0.15, 0.15, "hold", "both"),
        (0.15, 1.0, "float", "south"),
        (500.0, 0.15, "float", "both"),
        (500.0, 1.0, "hold", "south"),
        (500.0, 200.0, "hold", "both"),
        (500.0, 200.0, "float", "both"),
        (0.0, 2000.0, "hold", "south"),
    ],
)
def test_crossbar_matches_ngspice(ngspice, r_wire, r_row, idle_rows, adc_sides):
    """Row-wire resistance (crossbar.py): 6 rows x 3 columns, both idle conventions, ideal and resistive columns."""
    gp, gn, n = _case(6, 3, seed=63)
    kw = dict(r_wire_ohm=r_wire, r_row_ohm=r_row, idle_rows=idle_rows, adc_sides=adc_sides)
    spice = spice_column_charge(gp, gn, n, **kw)
    model = column_charge_2d(gp, gn, n, method="time_stepped", **kw)
    scale = np.abs(model).max()
    np.testing.assert_allclose(spice, model, rtol=1e-5, atol=1e-5 * scale)
    if r_row >= 200:  # the comparison is not vacuous: the row drop is far above the tolerance
        no_row = column_charge_2d(gp, gn, n, method="time_stepped", **{**kw, "r_row_ohm": 0.0})
        assert np.abs(no_row - model).max() > 1e-3 * scale


def test_row_wires_in_the_netlist():
    gp, gn, n = _case(4, 3, seed=2, batch=1)
    kw = dict(r_wire_ohm=1.0, idle_rows="float", adc_sides="both")
    assert write_netlist(gp, gn, n[0], r_row_ohm=0.0, **kw) == write_netlist(gp, gn, n[0], **kw)
    net = write_netlist(gp, gn, n[0], r_row_ohm=3.0, **kw)
    wires = [ln for ln in net.splitlines() if ln.startswith("RR")]
    assert len(wires) == 2 * 4 * 3  # G+ and G- wire, per row, one segment per column
    assert sum(ln.endswith(" 1.5") for ln in wires) == 2 * 4  # the half segment from each driver
    assert "v(rp1_2)" in net and "v(rp1)" not in net  # cells hang on the wire's node, not on the driver


def test_float_netlist_has_one_switch_per_cell():
    gp, gn, n = _case(4, 3, seed=1, batch=1)
    gp[:] = 1.0
    gn[:] = 1.0
    n[0] = [2, -1, 0, 3]
    net = write_netlist(gp, gn, n[0], r_wire_ohm=1.0, idle_rows="float")
    cells = [ln for ln in net.splitlines() if ln.startswith("B")]
    assert len(cells) == 2 * 3 * 3  # two devices x three columns x three rows that ever conduct
    assert all("v(k" in ln for ln in cells)  # each gated by its row's word line


def test_missing_ngspice_names_the_package():
    with pytest.raises(RuntimeError, match="ngspice"):
        spice_column_charge(np.ones((2, 1)), np.ones((2, 1)), [1, 1], r_wire_ohm=1.0, executable="no-such-ngspice")


def _pwl(net: str, source: str) -> np.ndarray:
    """The (time s, value) corners of ``source``'s PWL in ``net``."""
    line = next(ln for ln in net.splitlines() if ln.startswith(source + " "))
    return np.array(line.split("PWL(")[1].rstrip(")").split(), dtype=float).reshape(-1, 2)


def test_hold_ramps_span_a_slot_and_float_ramps_stay_short():
    # hold: corners on half slots (exact for a resistive network, few timepoints); float: a 1e-6-slot ramp.
    gp, gn, t = np.ones((2, 1)), np.ones((2, 1)), 2e-9
    hold = write_netlist(gp, gn, [3, -5], r_wire_ohm=1.0, t_slot_ns=2.0)
    np.testing.assert_allclose(_pwl(hold, "VP0"), [[0, 0.6], [2.5 * t, 0.6], [3.5 * t, 0.4], [5 * t, 0.4]])
    assert "VP1 rp1 0 DC 0.2" in hold  # the longest pulse lasts the whole window
    assert "tran 2e-09 1e-08 0 2e-09" in hold  # the largest step is one slot
    flt = write_netlist(gp, gn, [3, -5], r_wire_ohm=1.0, t_slot_ns=2.0, idle_rows="float")
    np.testing.assert_allclose(_pwl(flt, "VK0")[1:3, 0], [3 * t - 1e-6 * t / 2, 3 * t + 1e-6 * t / 2], rtol=1e-15)


def _fake_ngspice(tmp_path, charges: str, *, recover: bool = True):
    """A stand-in for ngspice that stops like ngspice-39 on some 512-row float netlists at reltol=1e-12 and
    (``recover``) prints ``charges`` at reltol=1e-10; it logs each call."""
    fake = tmp_path / "fake-ngspice"
    ok = f'printf "{charges}"' if recover else 'echo "doAnalyses: TRAN:  Timestep too small; time = 6.9e-08"'
    fake.write_text(f'#!/bin/sh\necho "$2" >> "{tmp_path}/calls"\n'
                    f'if grep -q "^.options reltol=1e-10 " "$2"; then {ok}; '
                    'else echo "doAnalyses: TRAN:  Timestep too small; time = 6.9e-08"; fi\n')
    fake.chmod(0o755)
    return str(fake)


def test_timestep_too_small_is_rerun_once_at_a_relaxed_tolerance(tmp_path, caplog):
    fake = _fake_ngspice(tmp_path, "q0 = 2.5e-15\\nq1 = -1e-15\\n")
    gp, gn, n = _case(3, 2, seed=5, batch=1)
    net = write_netlist(gp, gn, n[0], r_wire_ohm=1.0, idle_rows="float")
    with caplog.at_level("WARNING", logger="aimc_runner.circuit.spice"):
        run = run_netlist(net, tmp_path / "col.cir", cols=2, executable=fake)
    assert run.relaxed and run.wall_s >= 0
    np.testing.assert_allclose(run.charge_fc, [2.5, -1.0])
    assert "timestep too small" in caplog.text.lower() and "1e-10" in caplog.text
    relaxed = (tmp_path / "col.relaxed.cir").read_text()
    assert relaxed.count(".options") == 1 and ".options reltol=1e-10 " in relaxed
    assert relaxed.replace("reltol=1e-10", "reltol=1e-12") == net  # nothing else changed
    # spice_column_charge goes through the same retry and returns the rerun's charges
    np.testing.assert_allclose(spice_column_charge(gp, gn, n, r_wire_ohm=1.0, executable=fake), [[2.5, -1.0]])


def test_a_rerun_that_fails_again_raises(tmp_path):
    fake = _fake_ngspice(tmp_path, "", recover=False)
    net = write_netlist(np.ones((2, 1)), np.ones((2, 1)), [1, 2], r_wire_ohm=1.0, idle_rows="float")
    with pytest.raises(SpiceError, match="(?i)timestep too small"):
        run_netlist(net, tmp_path / "col.cir", cols=1, executable=fake)
    assert (tmp_path / "calls").read_text().split() == ["col.cir", "col.relaxed.cir"]  # one retry, no more
