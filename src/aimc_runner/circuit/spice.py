"""An ngspice transient simulation of a few columns: the external check of the ladder model (spec 3.2).

The netlist is the circuit of spec section 3 written out element by element:

* row drivers: per row i one ideal source for the G+ devices' row (``rp<i>``) and one for the G- devices' row
  (``rn<i>``), shared by all columns. Row wires are ideal by default; with ``r_row_ohm > 0`` (beyond the published
  model, see ``crossbar.py``) each row wire is a chain of resistors driven at its west end: ``r_row/2`` from the
  driver to the cell node ``rp<i>_0`` of column 0, ``r_row`` between ``rp<i>_<j-1>`` and ``rp<i>_<j>``, open east end;
* per column j a chain of wire resistors ``r_wire`` between the cell nodes and ``r_wire/2`` into the ADC node, which
  an ideal source holds at v_read; the ADC current is that source's branch current;
* ``hold``: each device is a resistor from its row to the column node; the row sources are PWL steps back to v_read;
* ``float``: each cell has its own switch: a behavioural current source ``I = G·(v_row - v_col)·v(k<i>)`` gated by
  the row's word line ``k<i>`` (1 while on, 0 after). The row drivers stay at their on-voltages; an off cell's
  row voltage is irrelevant because the cell carries no current (with row-wire resistance, an idle row's wire then
  carries no current either).

Ideal steps are replaced by linear ramps of width ``eps`` centred on the step time. In ``hold`` the network is
linear and resistive, so the ADC current is piecewise linear in time with breakpoints at the ramp corners and the
trapezoid integral over ngspice's timepoints (which include every PWL corner) equals the ideal step's integral
exactly, whatever ``eps``: the ramps are one slot wide (corners on half slots, shared by neighbouring pulse lengths),
because after each breakpoint ngspice restarts at a tenth of the gap to the next one and doubles its step from there,
so a 1e-6-slot ramp costs some 20 timepoints per corner and a one-slot ramp about 4. In ``float`` the gated current
is slightly non-linear inside a ramp, an error of order eps/t_slot × IR fraction, so its ramps stay at 1e-6 slot.
Between corners every source is constant, so the largest step is one slot.

Charge is integrated with ngspice's ``integ`` over the whole window and printed at full precision. A run that stops
with "timestep too small" at ``reltol=1e-12`` (some 512-row ``float`` netlists do) is rerun once at
``reltol=1e-10`` (:func:`run_netlist`; the rerun agrees with the model to ~5e-11 there) and flagged.
Units in the netlist are SI (Ω, V, s, A); the result is returned in fC.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SpiceError", "SpiceRun", "ngspice_available", "run_netlist", "spice_column_charge", "write_netlist"]

log = logging.getLogger(__name__)

# Ramp width as a fraction of t_slot: any width is exact for hold (one slot: fewest timepoints); float needs it small.
_RAMP_FRACTION = {"hold": 1.0, "float": 1e-6}
_OPTIONS = ".options reltol={} abstol=1e-20 vntol=1e-15"
_RELTOL, _RELAXED_RELTOL = "1e-12", "1e-10"


class SpiceError(RuntimeError):
    """An ngspice run that failed (its output's tail is in the message)."""


@dataclass
class SpiceRun:
    """One netlist's result: ``charge_fc`` [cols] fC; ``relaxed``: it stopped on "timestep too small" at reltol
    1e-12 and this is the rerun at 1e-10; ``wall_s``: both runs' wall time."""

    charge_fc: np.ndarray
    relaxed: bool
    wall_s: float


def ngspice_available(executable: str = "ngspice") -> bool:
    return shutil.which(executable) is not None


def _fmt(x: float) -> str:
    return repr(float(x))


def write_netlist(
    g_pos, g_neg, durations, *, r_wire_ohm, v_read_v=0.4, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold",
    adc_sides="south", r_row_ohm=0.0,
) -> str:
    """Netlist (with a ``.control`` block that prints ``q<j>`` in coulombs) for one token.

    ``g_pos``, ``g_neg``: [rows, cols] µS; ``durations``: [rows] signed integer slots. Other arguments as in
    :func:`aimc_runner.circuit.column_charge`; ``r_row_ohm`` (Ω, default 0: ideal row wires, the netlist is then
    unchanged) as in :func:`aimc_runner.circuit.crossbar.column_charge_2d`.
    """
    gp = np.asarray(g_pos, dtype=float)
    gn = np.asarray(g_neg, dtype=float)
    n = np.asarray(durations).astype(np.int64)
    idle = getattr(idle_rows, "value", idle_rows)
    sides = getattr(adc_sides, "value", adc_sides)
    if idle not in ("hold", "float") or sides not in ("south", "both"):
        raise ValueError(f"unsupported idle_rows={idle!r} or adc_sides={sides!r}")
    rows, cols = gp.shape
    t = t_slot_ns * 1e-9
    eps = _RAMP_FRACTION[idle] * t
    t_end = max(int(np.abs(n).max(initial=0)), 1) * t
    lines = [f"* aimc-runner column check: {rows} rows x {cols} cols, idle_rows={idle}, adc_sides={sides}"]
    lines.append(_OPTIONS.format(_RELTOL))

    def pwl(v_on: float, v_off: float, t_off: float) -> str:
        # On from t = 0, linear ramp of width eps centred on t_off, then off until the end of the window
        # (t_off is a whole number of slots below t_end, so a one-slot ramp stays inside (0, t_end)).
        if t_off <= 0:
            return f"DC {_fmt(v_off)}"
        if t_off >= t_end:
            return f"DC {_fmt(v_on)}"
        pts = [(0.0, v_on), (t_off - eps / 2, v_on), (t_off + eps / 2, v_off), (t_end, v_off)]
        return "PWL(" + " ".join(f"{_fmt(a)} {_fmt(b)}" for a, b in pts) + ")"

    for i in range(rows):
        s = float(np.sign(n[i]))
        v_p, v_n = v_read_v + s * dv_v, v_read_v - s * dv_v
        t_off = abs(int(n[i])) * t
        if idle == "hold":
            lines.append(f"VP{i} rp{i} 0 {pwl(v_p, v_read_v, t_off)}")
            lines.append(f"VN{i} rn{i} 0 {pwl(v_n, v_read_v, t_off)}")
        else:
            lines.append(f"VP{i} rp{i} 0 DC {_fmt(v_p)}")
            lines.append(f"VN{i} rn{i} 0 DC {_fmt(v_n)}")
            lines.append(f"VK{i} k{i} 0 {pwl(1.0, 0.0, t_off)}")  # the row's word line gating its cells
        if r_row_ohm > 0:  # the two row wires, driven at the west end (column 0)
            for wire in (f"rp{i}", f"rn{i}"):
                nodes = [wire] + [f"{wire}_{j}" for j in range(cols)]
                for j in range(cols):
                    r = r_row_ohm / 2 if j == 0 else r_row_ohm
                    lines.append(f"RR{wire[1:]}_{j} {nodes[j]} {nodes[j + 1]} {_fmt(r)}")
    for j in range(cols):
        # Chain from the far end to the ADC; a north-read column is wired the other way round.
        chain = list(range(rows))[::-1] if (sides == "both" and j % 2 == 1) else list(range(rows))
        nodes = [f"c{j}_{i}" for i in chain] + [f"a{j}"]
        for k in range(rows):
            r = r_wire_ohm if k < rows - 1 else r_wire_ohm / 2
            if r > 0:
                lines.append(f"RW{j}_{k} {nodes[k]} {nodes[k + 1]} {_fmt(r)}")
            else:
                lines.append(f"VW{j}_{k} {nodes[k]} {nodes[k + 1]} DC 0")  # a short
        lines.append(f"VA{j} a{j} 0 DC {_fmt(v_read_v)}")  # the ADC holds its node at v_read
        for i in range(rows):
            suffix = f"_{j}" if r_row_ohm > 0 else ""  # the row wire's node at this cell
            for tag, g, row in (("P", gp[i, j], f"rp{i}{suffix}"), ("N", gn[i, j], f"rn{i}{suffix}")):
                if g == 0 or (idle == "float" and n[i] == 0):
                    continue  # no device, or a cell that is never connected
                if idle == "hold":
                    lines.append(f"R{tag}{i}_{j} {row} c{j}_{i} {_fmt(1e6 / g)}")
                else:
                    lines.append(f"B{tag}{i}_{j} {row} c{j}_{i} I = {_fmt(g * 1e-6)}*(v({row})-v(c{j}_{i}))*v(k{i})")
    lines += [".control", "set numdgt=16", f"tran {_fmt(t)} {_fmt(t_end)} 0 {_fmt(t)}"]  # largest step: one slot
    for j in range(cols):
        # Trapezoid over all timepoints from 0 to t_end; exact for a piecewise-linear current.
        lines += [f"let qv{j} = integ(va{j}#branch)", f"let q{j} = qv{j}[length(qv{j}) - 1]", f"print q{j}"]
    lines += ["quit 0", ".endc", ".end", ""]  # quit 0: batch mode otherwise exits 1 ("no simulations run")
    return "\n".join(lines)


def run_netlist(text: str, path, *, cols: int, executable: str = "ngspice", timeout_s=None) -> SpiceRun:
    """Run a netlist from :func:`write_netlist` in batch mode (written to ``path``; ngspice runs in its folder).

    A run that stops with "timestep too small" is rerun once with ``reltol`` relaxed from 1e-12 to 1e-10 (written
    next to it as ``<name>.relaxed.cir``), with a logged warning and ``relaxed=True`` in the result. Raises
    :class:`SpiceError` if ngspice fails, times out (``timeout_s``, s) or does not print ``cols`` charges.
    """
    path = Path(path)
    t0 = time.perf_counter()
    q, out = _run_once(text, path, cols, executable, timeout_s)
    relaxed = q is None and "timestep too small" in out.lower() and _OPTIONS.format(_RELTOL) in text
    if relaxed:
        log.warning("ngspice stopped on 'timestep too small' at reltol=%s in %s; rerunning at reltol=%s",
                    _RELTOL, path.name, _RELAXED_RELTOL)
        text = text.replace(_OPTIONS.format(_RELTOL), _OPTIONS.format(_RELAXED_RELTOL), 1)
        path = path.with_suffix(".relaxed.cir")
        q, out = _run_once(text, path, cols, executable, timeout_s)
    if q is None:
        raise SpiceError(f"ngspice failed on {path}:\n{out[-2000:]}")
    return SpiceRun(q, relaxed, time.perf_counter() - t0)


def _run_once(text: str, path: Path, cols: int, exe: str, timeout_s) -> tuple:
    """(charges fC [cols], or None on failure; ngspice's output)."""
    path.write_text(text)
    try:
        proc = subprocess.run([exe, "-b", path.name], cwd=path.parent, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"ngspice timed out after {timeout_s:g} s"
    out = proc.stdout + proc.stderr
    found = dict(re.findall(r"^q(\d+)\s*=\s*(\S+)", proc.stdout, flags=re.MULTILINE))
    failed = re.search(r"^\s*error|timestep too small", out, flags=re.IGNORECASE | re.MULTILINE)
    if proc.returncode != 0 or failed or sorted(found) != sorted(map(str, range(cols))):
        return None, f"(rc {proc.returncode})\n{out}"
    return np.array([float(found[str(j)]) * 1e15 for j in range(cols)]), out  # C -> fC


def spice_column_charge(
    g_pos, g_neg, durations, *, r_wire_ohm, v_read_v=0.4, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold",
    adc_sides="south", executable="ngspice", timeout_s=120.0, r_row_ohm=0.0,
) -> np.ndarray:
    """Charge [fC] per column from an ngspice transient run, one run per token.

    ``durations``: [batch, rows] or [rows] signed integer slots; returns [batch, cols] (or [cols]).
    Raises ``RuntimeError`` if ngspice is not installed, :class:`SpiceError` (a ``RuntimeError``) if a run fails;
    a run rerun at the relaxed tolerance (see :func:`run_netlist`) is logged as a warning.
    """
    exe = shutil.which(executable)
    if exe is None:
        raise RuntimeError(
            f"`{executable}` not found: install the Debian package `ngspice` (apt-get install ngspice) "
            "to run the SPICE cross-check"
        )
    gp = np.asarray(g_pos, dtype=float)
    n = np.asarray(durations)
    squeeze = n.ndim == 1
    n = np.atleast_2d(n)
    cols = gp.shape[1]
    q = np.zeros((n.shape[0], cols))
    with tempfile.TemporaryDirectory(prefix="aimc-spice-") as tmp:
        for b in range(n.shape[0]):
            text = write_netlist(
                g_pos, g_neg, n[b], r_wire_ohm=r_wire_ohm, v_read_v=v_read_v, dv_v=dv_v, t_slot_ns=t_slot_ns,
                idle_rows=idle_rows, adc_sides=adc_sides, r_row_ohm=r_row_ohm,
            )
            q[b] = run_netlist(text, Path(tmp) / f"token{b}.cir", cols=cols, executable=exe,
                               timeout_s=timeout_s).charge_fc
    return q[0] if squeeze else q
