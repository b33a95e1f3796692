"""The oracle: a dense nodal solve of each column network, slot by slot, in plain numpy (spec 3.2).

Obvious and slow on purpose, for small arrays in tests. It shares no code with ``ladder.py``/``_kernels.py``/
``crossbar.py``: it writes down the conductance matrix of one column (or, with row-wire resistance, of the whole
tile) for the sources of one slot and calls ``np.linalg.solve``.

Nodal analysis with the ADC node (held at v_read by the integrator) as the reference node, so every potential
below is relative to v_read; a linear network is unchanged by that choice, and it keeps the µV-scale IR drops from
being rounded against 0.4 V. Units: µS, V, ns, Ω, µA, fC.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "column_charge_dense", "column_charge_dense_2d", "effective_conductance_dense_2d", "solve_column", "solve_crossbar",
]


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


# ----------------------------------------------------------------------------------------------------------------
# The 2-D crossbar with row-wire resistance (crossbar.py): the whole tile as one dense nodal system


def solve_crossbar(g_pos, g_neg, v_pos, v_neg, connected, *, r_wire_ohm, r_row_ohm, adc_sides="south"):
    """Solve the whole crossbar for one set of driver voltages.

    The circuit: row i has a G+ wire and a G- wire, each driven at its west end (column 0 side) at ``v_pos[i]`` /
    ``v_neg[i]`` through ``r_row_ohm / 2``, with ``r_row_ohm`` between the cells of neighbouring columns; column j
    is a wire with ``r_wire_ohm`` between cells and ``r_wire_ohm / 2`` into its ADC (at row rows-1, or row 0 for odd
    columns when ``adc_sides="both"``), held at 0 (v_read). A connected cell (i, j) joins the G+ wire's node (i, j)
    to the column node (i, j) through ``g_pos[i, j]`` and the G- wire's node likewise through ``g_neg[i, j]``.
    A wire of zero resistance is one node: its cells sit on the driver or the ADC node itself.

    Parameters
    ----------
    g_pos, g_neg : [rows, cols] µS. v_pos, v_neg : [rows] V relative to v_read.
    connected : [rows] bool; a row whose cells are disconnected carries no current.

    Returns
    -------
    i_adc : [cols] current into each ADC, µA.
    i_drv : [2, rows] current out of each G+ / G- driver into its wire, µA (KCL: ``i_drv.sum() == i_adc.sum()``).
    potential : dict node name -> V, relative to v_read.
    """
    g_pos = np.asarray(g_pos, dtype=float)
    g_neg = np.asarray(g_neg, dtype=float)
    on = np.asarray(connected, dtype=bool)
    rows, cols = g_pos.shape
    sides = getattr(adc_sides, "value", adc_sides)

    def col(i, j):
        return ("adc", j) if r_wire_ohm == 0 else ("col", i, j)

    def row(s, i, j):
        return ("drv", s, i) if r_row_ohm == 0 else ("row", s, i, j)

    fixed = {("adc", j): 0.0 for j in range(cols)}
    for i in range(rows):
        fixed[("drv", "p", i)] = float(v_pos[i])
        fixed[("drv", "n", i)] = float(v_neg[i])
    resistors = []  # (node a, node b, conductance µS)
    for j in range(cols):
        north = sides == "both" and j % 2 == 1
        if r_wire_ohm > 0:
            for i in range(rows - 1):
                resistors.append((col(i, j), col(i + 1, j), 1e6 / r_wire_ohm))
            resistors.append((col(0 if north else rows - 1, j), ("adc", j), 2e6 / r_wire_ohm))
        for i in range(rows):
            if on[i]:
                resistors.append((row("p", i, j), col(i, j), g_pos[i, j]))
                resistors.append((row("n", i, j), col(i, j), g_neg[i, j]))
    if r_row_ohm > 0:
        for s in ("p", "n"):
            for i in range(rows):
                resistors.append((("drv", s, i), row(s, i, 0), 2e6 / r_row_ohm))
                for j in range(cols - 1):
                    resistors.append((row(s, i, j), row(s, i, j + 1), 1e6 / r_row_ohm))
    free = sorted({x for a, b, _ in resistors for x in (a, b) if x not in fixed}, key=str)
    index = {name: k for k, name in enumerate(free)}
    mat = np.zeros((len(free), len(free)))
    rhs = np.zeros(len(free))
    for a, b, g in resistors:
        for x, y in ((a, b), (b, a)):
            if x in index:
                mat[index[x], index[x]] += g
                if y in index:
                    mat[index[x], index[y]] -= g
                else:
                    rhs[index[x]] += g * fixed[y]
    potential = dict(fixed)
    if free:
        potential.update(zip(free, np.linalg.solve(mat, rhs)))
    i_adc = np.zeros(cols)
    i_drv = np.zeros((2, rows))
    for a, b, g in resistors:
        for x, y in ((a, b), (b, a)):
            current = g * (potential[y] - potential[x])  # flowing from y into x
            if x[0] == "adc":
                i_adc[x[1]] += current
            elif x[0] == "drv":
                i_drv[0 if x[1] == "p" else 1, x[2]] -= current
    return i_adc, i_drv, potential


def effective_conductance_dense_2d(g_pos, g_neg, *, r_wire_ohm, r_row_ohm, adc_sides="south"):
    """``G_eff[i, j]``, µS: current into ADC j per volt with row i's G+ wire at +1 V, its G- wire at -1 V and every
    other driver at 0 (hold mode). One :func:`solve_crossbar` per row."""
    rows, cols = np.shape(g_pos)
    g_eff = np.zeros((rows, cols))
    for i in range(rows):
        v = np.zeros(rows)
        v[i] = 1.0
        g_eff[i], _, _ = solve_crossbar(
            g_pos, g_neg, v, -v, np.ones(rows, bool), r_wire_ohm=r_wire_ohm, r_row_ohm=r_row_ohm,
            adc_sides=adc_sides,
        )
    return g_eff


def column_charge_dense_2d(
    g_pos, g_neg, durations, *, r_wire_ohm, r_row_ohm, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold",
    adc_sides="south",
):
    """Charge [fC] per column of the 2-D crossbar: ``Q_j = Σ_slots I_ADC,j(slot)·t_slot``, one dense solve of the
    whole tile per slot. Conventions as in :func:`column_charge_dense`; ``float`` disconnects the cells of the rows
    that are off. No input validation: this is a test oracle."""
    n = np.asarray(durations)
    squeeze = n.ndim == 1
    n = np.atleast_2d(n).astype(np.int64)
    idle = getattr(idle_rows, "value", idle_rows)
    rows, cols = np.shape(g_pos)
    q = np.zeros((n.shape[0], cols))
    for b in range(n.shape[0]):
        for t in range(int(np.abs(n[b]).max(initial=0))):
            on = np.abs(n[b]) > t
            s = np.where(on, np.sign(n[b]), 0).astype(float)
            connected = on if idle == "float" else np.ones(rows, dtype=bool)
            i_adc, _, _ = solve_crossbar(
                g_pos, g_neg, s * dv_v, -s * dv_v, connected, r_wire_ohm=r_wire_ohm, r_row_ohm=r_row_ohm,
                adc_sides=adc_sides,
            )
            q[b] += i_adc * t_slot_ns
    return q[0] if squeeze else q
