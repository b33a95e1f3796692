"""The oracle: a dense nodal solve of each column network, slot by slot, in plain numpy (spec 3.2).

Obvious and slow on purpose, for small arrays in tests. It shares no code with ``ladder.py``/``_kernels.py``: it
writes down the conductance matrix of one column for the sources of one slot and calls ``np.linalg.solve``.

Nodal analysis with the ADC node (held at v_read by the integrator) as the reference node, so every potential
below is relative to v_read; a linear network is unchanged by that choice, and it keeps the µV-scale IR drops from
being rounded against 0.4 V. Units: µS, V, ns, Ω, µA, fC.
"""

from __future__ import annotations

import numpy as np

__all__ = ["column_charge_dense", "solve_column"]


def solve_column(g_pos, g_neg, v_pos, v_neg, connected, r_wire_ohm):
    """Solve one column for one set of source voltages.

    Parameters
    ----------
    g_pos, g_neg : [rows] µS, the two devices at each node. Node 0 is the farthest from the ADC.
    v_pos, v_neg : [rows] V relative to v_read, the row voltages driving the G+ and G- devices.
    connected : [rows] bool; a disconnected cell (floating idle row) carries no current and does not load the node.
    r_wire_ohm : Ω between neighbouring nodes; half of it between node rows-1 and the ADC.

    Returns
    -------
    u : [rows] node potentials, V relative to v_read.
    i_adc : current from the last wire segment into the ADC node, µA.
    i_cells : [rows] current each cell injects into the column, µA (KCL: ``i_cells.sum() == i_adc``).
    """
    g_pos = np.asarray(g_pos, dtype=float)
    g_neg = np.asarray(g_neg, dtype=float)
    on = np.asarray(connected, dtype=bool)
    rows = g_pos.size
    gp = np.where(on, g_pos, 0.0)
    gn = np.where(on, g_neg, 0.0)
    if r_wire_ohm == 0:
        # Zero wire resistance: all nodes are the ADC node.
        u = np.zeros(rows)
        i_cells = gp * v_pos + gn * v_neg
        return u, i_cells.sum(), i_cells
    gw = 1e6 / r_wire_ohm  # wire segment conductance, µS
    a = np.zeros((rows, rows))
    for i in range(rows):
        a[i, i] += gp[i] + gn[i]  # the cell's devices to their row drivers
        if i + 1 < rows:  # full segment to the next node
            a[i, i] += gw
            a[i + 1, i + 1] += gw
            a[i, i + 1] -= gw
            a[i + 1, i] -= gw
    a[rows - 1, rows - 1] += 2.0 * gw  # half segment into the ADC (the reference node)
    rhs = gp * v_pos + gn * v_neg  # Norton: each device driven from its row voltage
    u = np.linalg.solve(a, rhs)
    i_adc = 2.0 * gw * u[rows - 1]
    i_cells = gp * (v_pos - u) + gn * (v_neg - u)
    return u, i_adc, i_cells


def column_charge_dense(
    g_pos, g_neg, durations, *, r_wire_ohm, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold", adc_sides="south"
):
    """Charge [fC] per column: ``Q_j = Σ_slots I_ADC,j(slot)·t_slot``, one dense solve per slot and column.

    ``g_pos``, ``g_neg`` [rows, cols] µS; ``durations`` signed integer slots [batch, rows] (or [rows]), pulses
    left-aligned at t = 0. In slot t row i is on iff ``|n_i| > t``: its G+ device is driven at ``+sign(n_i)·dv`` and
    its G- device at ``-sign(n_i)·dv``. Off rows: ``idle_rows="hold"`` drives both at 0 (v_read),
    ``"float"`` disconnects the cell. ``adc_sides="both"`` reads odd columns at the north edge (row order reversed).
    No input validation: this is a test oracle.
    """
    g_pos = np.asarray(g_pos, dtype=float)
    g_neg = np.asarray(g_neg, dtype=float)
    n = np.asarray(durations)
    squeeze = n.ndim == 1
    n = np.atleast_2d(n).astype(np.int64)
    idle = getattr(idle_rows, "value", idle_rows)
    sides = getattr(adc_sides, "value", adc_sides)
    rows, cols = g_pos.shape
    q = np.zeros((n.shape[0], cols))
    for b in range(n.shape[0]):
        for j in range(cols):
            # Order the column's nodes far end first; a north-read column is wired the other way round.
            order = np.arange(rows)[::-1] if (sides == "both" and j % 2 == 1) else np.arange(rows)
            nb = n[b, order]
            for t in range(int(np.abs(nb).max(initial=0))):
                on = np.abs(nb) > t
                s = np.where(on, np.sign(nb), 0).astype(float)
                connected = on if idle == "float" else np.ones(rows, dtype=bool)
                _, i_adc, _ = solve_column(
                    g_pos[order, j], g_neg[order, j], s * dv_v, -s * dv_v, connected, r_wire_ohm
                )
                q[b, j] += i_adc * t_slot_ns
    return q[0] if squeeze else q
