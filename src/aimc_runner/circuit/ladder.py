"""IR-drop on the column wires of a crossbar tile: transfer factors, effective weights and integrated charge.

Spec tile-model.md, sections 3, 3.1, 3.2. Units: conductance µS, voltage V, time ns, resistance Ω, current µA,
charge fC (µS·V·ns = fC). ``g_pos``/``g_neg`` are the two devices of each weight, ``[rows, cols]``; row 0 is the
farthest from the ADC of a column read at the south edge. Durations are signed integer pulse lengths in slots;
all pulses start at t = 0.

Two paths (spec 3.2):

* ``effective``: in ``hold`` mode the network is linear with a fixed topology, so by superposition
  ``Q_j = dv·t_slot·Σ_i τ_ij (G+_ij - G-_ij) n_i`` with τ from an O(rows) ladder recursion per column.
* ``time_stepped``: the direct solve of the column network, one O(rows) sweep per distinct set of active rows
  (rows switch off in order of |n|), exact for both ``hold`` and ``float`` idle rows.

The public functions validate their inputs here; the arithmetic lives in ``_kernels.py``.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from aimc_runner.circuit import _kernels
from aimc_runner.config import AdcSides, IdleRows, IrDropMethod

__all__ = ["column_charge", "effective_conductance", "time_stepped_charge", "transfer_factors"]

_OHM_TO_MOHM = 1e-6  # µS · Ω = 1e-6: the kernels take the wire resistance in MΩ


# ----------------------------------------------------------------------------------------------------------------
# Validation


def _as_enum(value, enum: type[Enum], name: str):
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(e.value) for e in enum)
        raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}") from None


def _scalar(value, name: str, *, positive: bool) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a real number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise ValueError(f"`{name}` must be finite and {'> 0' if positive else '>= 0'}, got {value!r}")
    return x


def _conductances(g_pos, g_neg) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for value, name in ((g_pos, "g_pos"), (g_neg, "g_neg")):
        a = np.asarray(value)
        if a.dtype == bool or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"`{name}` must be a real numeric array (µS), got dtype {a.dtype}")
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"`{name}` must be 2-D [rows, cols] with rows >= 1, got shape {a.shape}")
        if a.size:
            lo, hi = a.min(), a.max()  # NaN propagates through min/max: two passes, no temporaries
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"`{name}` contains non-finite conductances")
            if lo < 0:
                raise ValueError(f"`{name}` contains negative conductances (min {lo} µS)")
        out.append(a)
    if out[0].shape != out[1].shape:
        raise ValueError(f"`g_pos` and `g_neg` must have the same shape, got {out[0].shape} and {out[1].shape}")
    return out[0], out[1]


def _durations(durations, rows: int, window_slots) -> tuple[np.ndarray, bool]:
    """Signed integer slots as int64 [batch, rows]; also whether the input was 1-D."""
    n = np.asarray(durations)
    if n.dtype == bool or not (np.issubdtype(n.dtype, np.integer) or np.issubdtype(n.dtype, np.floating)):
        raise ValueError(f"`durations` must be signed integer slots, got dtype {n.dtype}")
    if n.ndim not in (1, 2) or n.shape[-1] != rows:
        raise ValueError(f"`durations` must be [batch, rows] or [rows] with rows = {rows}, got shape {n.shape}")
    if np.issubdtype(n.dtype, np.floating):
        # Integral floats (e.g. from round()) are accepted; anything else is a pulse that ends inside a slot.
        if not np.all(np.isfinite(n)):
            raise ValueError("`durations` contains non-finite values")
        if np.any(n != np.round(n)):
            raise ValueError("`durations` must be whole numbers of slots; got non-integer values")
        if n.size and np.abs(n).max() >= 2.0**62:
            raise ValueError("`durations` too large for int64 slot counts")
    n = n.astype(np.int64)
    if window_slots is not None:
        integral = isinstance(window_slots, (int, np.integer)) and not isinstance(window_slots, bool)
        if not integral or window_slots < 0:
            raise ValueError(f"`window_slots` must be a non-negative integer, got {window_slots!r}")
        if n.size and np.abs(n).max() > window_slots:
            raise ValueError(f"`durations` exceed the window: max |n| = {np.abs(n).max()} > {window_slots} slots")
    squeeze = n.ndim == 1
    return np.atleast_2d(n), squeeze


def _north_read(cols: int, adc_sides) -> np.ndarray:
    """Per column: True where the ADC is at the north edge (row 0 nearest), i.e. the row order is reversed."""
    sides = _as_enum(adc_sides, AdcSides, "adc_sides")
    flip = np.zeros(cols, dtype=np.bool_)
    if sides == AdcSides.both:
        flip[1::2] = True  # odd columns are read at the other edge
    return flip


def _tau(gp: np.ndarray, gn: np.ndarray, r_wire_ohm, adc_sides, segments=None) -> np.ndarray:
    """τ [rows, cols] for validated conductances, exact or with rows lumped into ``segments`` nodes."""
    rho = _scalar(r_wire_ohm, "r_wire_ohm", positive=False) * _OHM_TO_MOHM
    rows = gp.shape[0]
    integral = isinstance(segments, (int, np.integer)) and not isinstance(segments, bool)
    if segments is not None and not (integral and 1 <= segments <= rows):
        raise ValueError(f"`segments` must be an integer in [1, rows={rows}] or None, got {segments!r}")
    flip = _north_read(gp.shape[1], adc_sides)
    if segments is None or segments == rows:
        rho_seg = np.full(rows, rho)
        rho_seg[-1] = 0.5 * rho  # half a segment into the ADC
        return _kernels.transfer_factors(gp, gn, flip, rho_seg)
    # Lumping (the published model's speed-up, an approximation): consecutive rows in sweep order form
    # ``segments`` groups (sizes differ by at most one); a group's cells sit at one node at the group's centre,
    # the wire between nodes is r_wire times the distance between centres (and to the ADC, to half a row past
    # the last row), and every row of a group gets its node's τ.
    sizes = np.full(segments, rows // segments)
    sizes[: rows % segments] += 1
    edges = np.concatenate(([0], np.cumsum(sizes)))
    centres = (edges[:-1] + edges[1:] - 1) / 2.0
    rho_seg = rho * np.diff(np.append(centres, rows - 0.5))
    g = np.add.reduceat(_kernels.flip_columns(gp + gn, flip), edges[:-1], axis=0)  # [segments, cols], sweep order
    tau = _kernels.transfer_factors(g, np.zeros_like(g), np.zeros_like(flip), rho_seg)
    return _kernels.flip_columns(np.repeat(tau, sizes, axis=0), flip)  # back to row order


# ----------------------------------------------------------------------------------------------------------------
# Public API


def transfer_factors(g_pos, g_neg, *, r_wire_ohm, adc_sides="south", segments=None) -> np.ndarray:
    """Fraction τ of a current injected at each cell that reaches its column's ADC, in ``hold`` mode.

    Every node i of column j is loaded by ``g_ij = G+_ij + G-_ij`` to the held potential v_read; the wire has
    ``r_wire_ohm`` between neighbouring nodes and ``r_wire_ohm / 2`` into the ADC. τ is the product of current-
    division factors along the path from node i to the ADC (spec 3.1), computed by an O(rows) ladder recursion per
    column in resistances, so ``r_wire_ohm = 0`` gives τ = 1 exactly.

    Parameters
    ----------
    g_pos, g_neg : array [rows, cols], µS, finite and >= 0.
    r_wire_ohm : float, Ω, >= 0.
    adc_sides : "south" | "both" (or :class:`AdcSides`); ``both`` reads odd columns at the north edge.
    segments : int, optional. None (default): exact, one node per row. Otherwise an approximation that lumps
        consecutive rows into this many nodes at the groups' centres (``segments = rows`` is exact).

    Returns
    -------
    tau : float64 [rows, cols], in (0, 1].
    """
    gp, gn = _conductances(g_pos, g_neg)
    return _tau(gp, gn, r_wire_ohm, adc_sides, segments)


def effective_conductance(g_pos, g_neg, *, r_wire_ohm, adc_sides="south", segments=None) -> np.ndarray:
    """The exact ``hold``-mode effective weight matrix ``τ ⊙ (G+ - G-)`` [rows, cols] in µS (spec 3.1).

    ``Q = dv·t_slot·(n @ effective_conductance)`` is the integrated charge of every column, IR-drop included.
    Parameters as in :func:`transfer_factors`.
    """
    gp, gn = _conductances(g_pos, g_neg)
    return _tau(gp, gn, r_wire_ohm, adc_sides, segments) * (gp - gn)


def time_stepped_charge(
    g_pos, g_neg, durations, *, r_wire_ohm, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold", adc_sides="south",
    window_slots=None,
) -> np.ndarray:
    """Charge [fC] into each column's ADC by a direct slot-by-slot solve of the column network (spec 3, 3.2).

    ``Q_j = Σ_t I_j(t)·t_slot``: with ideal steps the active set is constant within a slot, so each slot is one
    linear solve. Slots with the same active set (rows switch off in order of |n|) share one O(rows) sweep.
    While row i is on with sign s its G+ device is driven at ``v_read + s·dv`` and its G- device at
    ``v_read - s·dv``; when off, ``idle_rows="hold"`` keeps both at v_read (the cell still loads the column) and
    ``"float"`` disconnects the cell. Exact for both conventions.

    Parameters
    ----------
    g_pos, g_neg : array [rows, cols], µS.
    durations : signed integer slots, [batch, rows] or [rows].
    r_wire_ohm : float, Ω, >= 0. dv_v : float, V, > 0. t_slot_ns : float, ns, > 0.
    idle_rows : "hold" | "float" (or :class:`IdleRows`). adc_sides : "south" | "both" (or :class:`AdcSides`).
    window_slots : int, optional; if given, ``|durations|`` must not exceed it.

    Returns
    -------
    charge : float64 [batch, cols] in fC ([cols] for 1-D ``durations``).
    """
    gp, gn = _conductances(g_pos, g_neg)
    rho = _scalar(r_wire_ohm, "r_wire_ohm", positive=False) * _OHM_TO_MOHM
    dv = _scalar(dv_v, "dv_v", positive=True)
    t_slot = _scalar(t_slot_ns, "t_slot_ns", positive=True)
    float_mode = _as_enum(idle_rows, IdleRows, "idle_rows") == IdleRows.float
    n, squeeze = _durations(durations, gp.shape[0], window_slots)
    flip = _north_read(gp.shape[1], adc_sides)

    g = _kernels.flip_columns(gp + gn, flip)  # [rows, cols], far end first
    j_src = _kernels.flip_columns(dv * (gp - gn), flip)  # µA for a positive pulse
    inv_d = np.empty((0, 0)) if float_mode else _kernels.hold_divisors(g, rho)
    widths, n_levels, k_on = _kernels.activity_levels(np.abs(n))
    sign = np.sign(n).astype(np.float64)
    q = _kernels.time_stepped(g, j_src, inv_d, sign, widths, n_levels, k_on, flip, rho, float_mode) * t_slot
    return q[0] if squeeze else q


def column_charge(
    g_pos, g_neg, durations, *, r_wire_ohm, v_read_v=0.4, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold",
    method="effective", adc_sides="south", window_slots=None, segments=None,
) -> np.ndarray:
    """Charge [fC] integrated by each column's ADC over one PWM window, IR-drop included (spec 3).

    ``method="effective"``: ``Q = dv·t_slot·(n @ (τ ⊙ (G+ - G-)))``, exact for ``idle_rows="hold"`` only.
    ``method="time_stepped"``: :func:`time_stepped_charge`, exact for both idle-row conventions.
    With ``r_wire_ohm = 0`` both give the ideal ``Q = dv·t_slot·Σ_i (G+ - G-) n_i``. Potentials are relative to
    ``v_read_v`` (the ADC holds its node there), so its value does not change the result; it is validated only.

    Parameters
    ----------
    g_pos, g_neg : array [rows, cols], µS. durations : signed integer slots, [batch, rows] or [rows].
    r_wire_ohm : Ω. v_read_v, dv_v : V. t_slot_ns : ns. idle_rows, method, adc_sides : strings or config enums.
    window_slots : int, optional; if given, ``|durations|`` must not exceed it.
    segments : int, optional; ``effective`` only: lump rows into this many nodes (see :func:`transfer_factors`).

    Returns
    -------
    charge : float64 [batch, cols] in fC ([cols] for 1-D ``durations``).
    """
    _scalar(v_read_v, "v_read_v", positive=True)
    idle = _as_enum(idle_rows, IdleRows, "idle_rows")
    meth = _as_enum(method, IrDropMethod, "method")
    if meth == IrDropMethod.time_stepped:
        if segments is not None:
            raise ValueError("`segments` lumping is an approximation of the effective path; time_stepped is exact")
        return time_stepped_charge(
            g_pos, g_neg, durations, r_wire_ohm=r_wire_ohm, dv_v=dv_v, t_slot_ns=t_slot_ns, idle_rows=idle,
            adc_sides=adc_sides, window_slots=window_slots,
        )
    if idle == IdleRows.float:
        raise ValueError(
            "`method`='effective' is exact only for idle_rows='hold': with floating idle rows the column loading "
            "depends on which rows are on, so the output is non-linear in the input; use method='time_stepped'"
        )
    gp, gn = _conductances(g_pos, g_neg)
    dv = _scalar(dv_v, "dv_v", positive=True)
    t_slot = _scalar(t_slot_ns, "t_slot_ns", positive=True)
    n, squeeze = _durations(durations, gp.shape[0], window_slots)
    g_eff = _tau(gp, gn, r_wire_ohm, adc_sides, segments) * (gp - gn)
    q = (dv * t_slot) * (n.astype(np.float64) @ g_eff)
    return q[0] if squeeze else q
