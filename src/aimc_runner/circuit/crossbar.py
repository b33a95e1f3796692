"""Row-wire resistance: the exact 2-D crossbar network (beyond the published model; spec tile-model.md, section 3).

The published model (and ``ladder.py``) keeps the row wires ideal. Here each row wire has ``r_row_ohm`` between
neighbouring cells, so every column sees row potentials that depend on what all the other columns draw: the
columns couple through the row wires and the network is genuinely 2-D. Units: conductance µS, voltage V, time ns,
resistance Ω, current µA, charge fC (µS·V·ns = fC).

The circuit (also written out by ``spice.write_netlist(..., r_row_ohm=...)`` and by ``reference.solve_crossbar``):

* Row i is a pair of row wires, one for the G+ devices and one for the G- devices (spec 3: "the G+ device's row"
  and "the G- device's row"). Each is driven at its **west end** (the side of column 0) by its row driver, through
  half a segment (``r_row / 2``) to the cell of column 0 and a full ``r_row`` between the cells of neighbouring
  columns; its east end (past column cols-1) is open. This is the column wire's geometry turned by 90°.
* Column j is the ladder of spec 3 (``r_wire`` between cells, ``r_wire / 2`` into the ADC, which holds its node at
  v_read); ``adc_sides="both"`` reads odd columns at the north edge.
* Cell (i, j) joins the G+ row wire's node (i, j) to the column node (i, j) through G+_ij, and the G- row wire's
  node (i, j) to the same column node through G-_ij.

``hold``: idle drivers are held at v_read, the ADC potential. Relative to v_read every idle driver is then a 0 V
source, every cell stays connected and the network is linear and time-invariant for the whole window; only the
driver voltages change (``±dv`` on the two row wires of an active row, 0 otherwise). By superposition the charge
is exactly ``Q_j = dv·t_slot·Σ_i n_i·G_eff[i, j]``, where ``G_eff[i, j]`` is the current into ADC j per volt when
row i's G+ wire is driven at +1 V and its G- wire at -1 V and every other driver is at 0 V. It depends on the
conductances and wires only, so it is precomputed once per tile, like the 1-D ``τ ⊙ (G+ - G-)`` (to which it
reduces exactly at ``r_row = 0``; with ``r_row > 0`` the G+ and G- wires see different drops, so ``G_eff`` is no
longer a τ times ``G+ - G-``).

``float``: an idle row's cells are disconnected (one access switch per cell, spec 3). The idle row's wire then
connects to nothing but its driver and carries no current whatever the driver does, so only the active rows'
wires are part of the network; the loading changes with the active set and each distinct active set is one solve.

Solvers. ``splu``: the sparse nodal matrix (column nodes, G+ and G- row-wire nodes; ports grounded) factorised
once by SuperLU and solved for min(rows, cols) right-hand sides at once (by reciprocity a unit voltage at each ADC
gives the same transfer admittances as a unit drive of each row). ``nested``: nested dissection with dense Schur
complements: the tile is cut recursively into boxes, each box's interior nodes are eliminated onto the nodes that
connect it to the rest (and the ports), and the two halves of each box are merged by eliminating their shared
cut. The top box leaves the multiport admittance between the row drivers and the ADCs; the cost is dense BLAS on
cut-sized matrices instead of a field per right-hand side. Both are exact (direct, no iteration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from aimc_runner.circuit import _kernels, ladder
from aimc_runner.circuit.ladder import _as_enum, _conductances, _durations, _north_read, _scalar
from aimc_runner.config import IdleRows, IrDropMethod

__all__ = ["column_charge_2d", "effective_conductance_2d"]

_potrf, _trtrs = sla.lapack.get_lapack_funcs(("potrf", "trtrs"), dtype=np.float64)

_SOLVERS = ("nested", "splu")
_RHS_CHUNK = 64  # right-hand sides per SuperLU solve: bounds the dense [nodes, chunk] block
_LEAF_CELLS = 64  # nested dissection: boxes of at most this many cells are eliminated directly


# ----------------------------------------------------------------------------------------------------------------
# The network


@dataclass
class _Network:
    """Nodal matrix of the crossbar with every port (row drivers, ADCs) held at 0 V, µS.

    ``p``, ``q``: [rows, cols] node ids of the G+ and G- row wires; ``u``: [rows, cols] column nodes, or None when
    ``r_wire = 0`` (every column node is then its ADC node, at 0 V); ``adc``: [cols] the column node next to each
    ADC (None when ``r_wire = 0``). ``g_drv`` / ``g_adc``: conductance of the half segment from a driver / into an
    ADC. ``gp``, ``gn``: the connected conductances (0 for a disconnected cell).
    """

    a: sp.csc_matrix
    p: np.ndarray
    q: np.ndarray
    u: np.ndarray | None
    adc: np.ndarray | None
    g_drv: float
    g_adc: float
    gp: np.ndarray
    gn: np.ndarray

    def rhs(self, v_pos: np.ndarray, v_neg: np.ndarray) -> np.ndarray:
        """Norton injections [nodes, k] for driver voltages ``v_pos``, ``v_neg`` [rows, k] (V, relative to v_read)."""
        b = np.zeros((self.a.shape[0], v_pos.shape[1]))
        b[self.p[:, 0]] = self.g_drv * v_pos
        b[self.q[:, 0]] = self.g_drv * v_neg
        return b

    def adc_currents(self, x: np.ndarray) -> np.ndarray:
        """Current into each ADC [cols, k] µA, from node potentials ``x`` [nodes, k] (V)."""
        if self.u is None:  # the cells feed the ADC node directly
            return np.einsum("ij,ijk->jk", self.gp, x[self.p]) + np.einsum("ij,ijk->jk", self.gn, x[self.q])
        return self.g_adc * x[self.adc]


def _network(gp, gn, flip, r_wire_ohm: float, r_row_ohm: float) -> _Network:
    """Assemble the 2-D network (requires ``r_row_ohm > 0``). ``flip``: [cols] north-read columns."""
    rows, cols = gp.shape
    cells = rows * cols
    grid = np.arange(cells).reshape(rows, cols)
    has_u = r_wire_ohm > 0
    u = grid if has_u else None
    p = grid + (cells if has_u else 0)
    q = p + cells
    n_nodes = int(q.max()) + 1
    g_row = 1.0 / (r_row_ohm * 1e-6)  # µS per segment
    edges = [(p[:, :-1], p[:, 1:], g_row), (q[:, :-1], q[:, 1:], g_row)]
    diag = np.zeros(n_nodes)
    diag[p[:, 0]] += 2.0 * g_row  # half a segment to the (grounded) driver
    diag[q[:, 0]] += 2.0 * g_row
    adc = None
    g_adc = 0.0
    if has_u:
        g_wire = 1.0 / (r_wire_ohm * 1e-6)
        g_adc = 2.0 * g_wire
        edges += [(u[:-1], u[1:], g_wire), (u, p, gp), (u, q, gn)]
        adc = np.where(flip, u[0], u[-1])  # the node next to each column's ADC
        diag[adc] += g_adc
    else:
        diag[p] += gp  # the cell ends on the ADC node, which is held at 0 V
        diag[q] += gn
    rr, cc, vv = [np.arange(n_nodes)], [np.arange(n_nodes)], [diag]
    for a, b, g in edges:
        g = np.broadcast_to(np.asarray(g, dtype=np.float64), a.shape).ravel()
        a, b = a.ravel(), b.ravel()
        keep = g > 0
        a, b, g = a[keep], b[keep], g[keep]
        rr += [a, b, a, b]
        cc += [a, b, b, a]
        vv += [g, g, -g, -g]
    mat = sp.coo_matrix((np.concatenate(vv), (np.concatenate(rr), np.concatenate(cc))), shape=(n_nodes, n_nodes))
    return _Network(mat.tocsc(), p, q, u, adc, 2.0 * g_row, g_adc, gp, gn)


def _factor(a: sp.csc_matrix):
    # Symmetric M-matrix: a symmetric fill-reducing order and diagonal pivots (no pivoting needed).
    return spla.splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))


# ----------------------------------------------------------------------------------------------------------------
# Effective conductance: sparse LU


def _effective_splu(net: _Network) -> np.ndarray:
    rows, cols = net.p.shape
    lu = _factor(net.a)
    if net.u is None:
        # No column resistance: the rows decouple, so one solve with every row driven gives every row's response.
        x = lu.solve(net.rhs(np.ones((rows, 1)), -np.ones((rows, 1))))[:, 0]
        return net.gp * x[net.p] + net.gn * x[net.q]
    g_eff = np.empty((rows, cols))
    if rows <= cols:  # drive each row pair (+1 V on G+, -1 V on G-), read every ADC
        for k0 in range(0, rows, _RHS_CHUNK):
            k = np.arange(k0, min(rows, k0 + _RHS_CHUNK))
            v = np.zeros((rows, k.size))
            v[k, np.arange(k.size)] = 1.0
            g_eff[k] = net.adc_currents(lu.solve(net.rhs(v, -v))).T
    else:  # reciprocity: 1 V at each ADC, read the current into every driver
        for k0 in range(0, cols, _RHS_CHUNK):
            k = np.arange(k0, min(cols, k0 + _RHS_CHUNK))
            b = np.zeros((net.a.shape[0], k.size))
            b[net.adc[k], np.arange(k.size)] = net.g_adc
            x = lu.solve(b)
            g_eff[:, k] = net.g_drv * (x[net.p[:, 0]] - x[net.q[:, 0]])
    return g_eff


# ----------------------------------------------------------------------------------------------------------------
# Effective conductance: nested dissection with dense Schur complements


def _eliminate(nodes: np.ndarray, m: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Schur complement of the dense nodal block ``m`` onto ``nodes[keep]``: ``M_KK - M_KE M_EE^-1 M_EK``."""
    k = np.flatnonzero(keep)
    if k.size == keep.size:
        return nodes, m
    e = np.flatnonzero(~keep)
    # M_EE is symmetric positive definite: every eliminated node reaches a kept node or a port along its wire.
    # Raw LAPACK (Cholesky, triangular solve): most boxes are small and the wrappers' checks would dominate.
    chol, info = _potrf(m[e][:, e], lower=1, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"crossbar nodal block not positive definite (potrf info {info})")
    y, info = _trtrs(chol, m[e][:, k], lower=1, overwrite_b=1)
    return nodes[k], m[k][:, k] - y.T @ y


def _dense_block(a: sp.csr_matrix, r: np.ndarray, c: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``a[r][:, c]`` as a dense array in O(nonzeros of the rows r); ``pos`` is an all -1 scratch [nodes] array."""
    start, stop = a.indptr[r], a.indptr[r + 1]
    count = stop - start
    row = np.repeat(np.arange(r.size), count)
    k = np.arange(row.size) - np.repeat(np.cumsum(count) - count, count) + np.repeat(start, count)
    pos[c] = np.arange(c.size)
    col = pos[a.indices[k]]
    hit = col >= 0
    out = np.zeros((r.size, c.size))
    out[row[hit], col[hit]] = a.data[k[hit]]
    pos[c] = -1
    return out


def _effective_nested(net: _Network) -> np.ndarray:
    rows, cols = net.p.shape
    a = net.a.tocsr()
    n_nodes = a.shape[0]
    layer = np.empty(n_nodes, dtype=np.int8)  # 0: column node, 1: row-wire node
    ni = np.empty(n_nodes, dtype=np.int64)
    nj = np.empty(n_nodes, dtype=np.int64)
    ii, jj = np.indices((rows, cols))
    for ids, lay in ((net.u, 0), (net.p, 1), (net.q, 1)):
        layer[ids], ni[ids], nj[ids] = lay, ii, jj
    terminal = np.zeros(n_nodes, dtype=bool)
    terminal[net.p[:, 0]] = terminal[net.q[:, 0]] = terminal[net.adc] = True
    scratch = np.full(n_nodes, -1, dtype=np.int64)

    def keep_mask(nodes, i0, i1, j0, j1):
        # A node stays while it is a port node or has a wire segment leaving the box: column wires leave through
        # the box's first/last row, row wires through its first/last column.
        i, j, col = ni[nodes], nj[nodes], layer[nodes] == 0
        out_col = ((i == i0) & (i0 > 0)) | ((i == i1 - 1) & (i1 < rows))
        out_row = ((j == j0) & (j0 > 0)) | ((j == j1 - 1) & (j1 < cols))
        return terminal[nodes] | np.where(col, out_col, out_row)

    def box(i0, i1, j0, j1):
        h, w = i1 - i0, j1 - j0
        if h * w <= _LEAF_CELLS:
            nodes = np.concatenate([ids[i0:i1, j0:j1].ravel() for ids in (net.u, net.p, net.q)])
            m = _dense_block(a, nodes, nodes, scratch)
            return _eliminate(nodes, m, keep_mask(nodes, i0, i1, j0, j1))
        # Cut across the smaller interface: a cut between rows severs w column wires, one between columns 2h row
        # wires (a G+ and a G- wire per row).
        if w <= 2 * h:
            k1, s1 = box(i0, i0 + h // 2, j0, j1)
            k2, s2 = box(i0 + h // 2, i1, j0, j1)
        else:
            k1, s1 = box(i0, i1, j0, j0 + w // 2)
            k2, s2 = box(i0, i1, j0 + w // 2, j1)
        nodes = np.concatenate([k1, k2])
        n1 = k1.size
        m = np.zeros((nodes.size, nodes.size))
        m[:n1, :n1] = s1
        m[n1:, n1:] = s2
        cross = _dense_block(a, k1, k2, scratch)  # the wire segments the cut severed
        m[:n1, n1:] = cross
        m[n1:, :n1] = cross.T
        return _eliminate(nodes, m, keep_mask(nodes, i0, i1, j0, j1))

    nodes, s = box(0, rows, 0, cols)
    # s is the admittance matrix of the network seen from the port nodes, with the ports' half segments grounded.
    pos = np.empty(n_nodes, dtype=np.int64)
    pos[nodes] = np.arange(nodes.size)
    rhs = np.zeros((nodes.size, cols))
    rhs[pos[net.adc], np.arange(cols)] = net.g_adc  # reciprocity: 1 V at each ADC
    x = sla.cho_solve(sla.cho_factor(s, lower=True, check_finite=False), rhs, check_finite=False)
    return net.g_drv * (x[pos[net.p[:, 0]]] - x[pos[net.q[:, 0]]])


# ----------------------------------------------------------------------------------------------------------------
# Public API


def _resistances(r_wire_ohm, r_row_ohm) -> tuple[float, float]:
    return _scalar(r_wire_ohm, "r_wire_ohm", positive=False), _scalar(r_row_ohm, "r_row_ohm", positive=False)


def effective_conductance_2d(g_pos, g_neg, *, r_wire_ohm, r_row_ohm, adc_sides="south", solver="nested") -> np.ndarray:
    """The exact ``hold``-mode effective weight matrix with row- and column-wire resistance, [rows, cols] µS.

    ``G_eff[i, j]`` is the current [µA] into column j's ADC per volt when row i's G+ wire is driven at +1 V and its
    G- wire at -1 V, every other driver held at v_read; ``Q = dv·t_slot·(n @ G_eff)`` is then every column's
    charge (superposition, see the module docstring). ``r_row_ohm = 0`` returns
    :func:`aimc_runner.circuit.effective_conductance` (``τ ⊙ (G+ - G-)``); with both resistances 0 it is
    ``G+ - G-``.

    Parameters
    ----------
    g_pos, g_neg : array [rows, cols], µS, finite and >= 0.
    r_wire_ohm : float, Ω, >= 0: column wire between neighbouring cells (half of it into the ADC).
    r_row_ohm : float, Ω, >= 0: row wire between neighbouring cells (half of it from the west-edge driver).
    adc_sides : "south" | "both" (or :class:`AdcSides`).
    solver : "nested" (default; nested-dissection dense Schur complements) | "splu" (sparse LU, one field per
        right-hand side). Both are direct and exact; they differ in speed only.

    Returns
    -------
    g_eff : float64 [rows, cols], µS.
    """
    gp, gn = _conductances(g_pos, g_neg)
    r_wire, r_row = _resistances(r_wire_ohm, r_row_ohm)
    flip = _north_read(gp.shape[1], adc_sides)
    if solver not in _SOLVERS:
        raise ValueError(f"`solver` must be one of {', '.join(map(repr, _SOLVERS))}, got {solver!r}")
    if r_row == 0:
        return ladder.effective_conductance(gp, gn, r_wire_ohm=r_wire, adc_sides=adc_sides)
    if gp.shape[1] == 0:
        return np.zeros(gp.shape)
    net = _network(gp, gn, flip, r_wire, r_row)
    if solver == "nested" and net.u is not None:
        return _effective_nested(net)
    return _effective_splu(net)


def column_charge_2d(
    g_pos, g_neg, durations, *, r_wire_ohm, r_row_ohm, v_read_v=0.4, dv_v=0.2, t_slot_ns=1.0, idle_rows="hold",
    method="effective", adc_sides="south", window_slots=None, solver="nested",
) -> np.ndarray:
    """Charge [fC] integrated by each column's ADC over one PWM window, with row- and column-wire resistance.

    ``method="effective"``: ``Q = dv·t_slot·(n @ G_eff)`` with :func:`effective_conductance_2d`; exact for
    ``idle_rows="hold"`` only. ``method="time_stepped"``: one sparse solve of the 2-D network per distinct active
    set (rows switch off in order of |n|); exact for both conventions. ``hold`` factorises the network once;
    ``float`` disconnects the idle rows' cells and factorises once per distinct active set of every token, which
    is meant for checks on small tiles, not for 512 x 512 batches. With ``r_row_ohm = 0`` both delegate to
    :func:`aimc_runner.circuit.column_charge`. Potentials are relative to ``v_read_v``, which is validated only.

    Parameters
    ----------
    g_pos, g_neg : array [rows, cols], µS. durations : signed integer slots, [batch, rows] or [rows].
    r_wire_ohm, r_row_ohm : Ω. v_read_v, dv_v : V. t_slot_ns : ns. idle_rows, method, adc_sides : strings or config
    enums. window_slots : int, optional; if given, ``|durations|`` must not exceed it. solver : see
    :func:`effective_conductance_2d` (``effective`` only).

    Returns
    -------
    charge : float64 [batch, cols] in fC ([cols] for 1-D ``durations``).
    """
    _scalar(v_read_v, "v_read_v", positive=True)
    idle = _as_enum(idle_rows, IdleRows, "idle_rows")
    meth = _as_enum(method, IrDropMethod, "method")
    gp, gn = _conductances(g_pos, g_neg)
    r_wire, r_row = _resistances(r_wire_ohm, r_row_ohm)
    dv = _scalar(dv_v, "dv_v", positive=True)
    t_slot = _scalar(t_slot_ns, "t_slot_ns", positive=True)
    n, squeeze = _durations(durations, gp.shape[0], window_slots)
    flip = _north_read(gp.shape[1], adc_sides)
    if meth == IrDropMethod.effective and idle == IdleRows.float:
        raise ValueError(
            "`method`='effective' is exact only for idle_rows='hold': with floating idle rows the loading depends "
            "on which rows are on, so the output is non-linear in the input; use method='time_stepped'"
        )
    if r_row == 0:
        q = ladder.column_charge(
            gp, gn, n, r_wire_ohm=r_wire, dv_v=dv, t_slot_ns=t_slot, idle_rows=idle, method=meth,
            adc_sides=adc_sides,
        )
    elif meth == IrDropMethod.effective:
        g_eff = effective_conductance_2d(gp, gn, r_wire_ohm=r_wire, r_row_ohm=r_row, adc_sides=adc_sides,
                                         solver=solver)
        q = (dv * t_slot) * (n.astype(np.float64) @ g_eff)
    else:
        q = _time_stepped(gp, gn, n, flip, r_wire, r_row, dv, idle == IdleRows.float) * t_slot
    return q[0] if squeeze else q


def _time_stepped(gp, gn, n, flip, r_wire, r_row, dv, float_mode) -> np.ndarray:
    """``Σ_levels I_ADC · slots`` [batch, cols] in µA·slot: one solve per distinct active set (spec 3, 3.2)."""
    batch, (rows, cols) = n.shape[0], gp.shape
    widths, n_levels, k_on = _kernels.activity_levels(np.abs(n))
    sign = np.sign(n).astype(np.float64)
    out = np.zeros((batch, cols))
    if cols == 0:
        return out
    if not float_mode:
        # Fixed topology: factorise once, every (token, level) is one right-hand side.
        net = _network(gp, gn, flip, r_wire, r_row)
        lu = _factor(net.a)
        jobs = [(b, k) for b in range(batch) for k in range(n_levels[b])]
        for c0 in range(0, len(jobs), _RHS_CHUNK):
            chunk = jobs[c0:c0 + _RHS_CHUNK]
            v = np.stack([np.where(k_on[b] > k, sign[b], 0.0) for b, k in chunk], axis=1)  # [rows, chunk]
            current = net.adc_currents(lu.solve(net.rhs(dv * v, -dv * v)))  # [cols, chunk]
            for c, (b, k) in enumerate(chunk):
                out[b] += current[:, c] * widths[b, k]
        return out
    for b in range(batch):
        for k in range(n_levels[b]):
            on = k_on[b] > k
            # Idle cells are disconnected; their row wires then carry no current and are left driven at 0 V.
            net = _network(gp * on[:, None], gn * on[:, None], flip, r_wire, r_row)
            v = np.where(on, sign[b], 0.0)[:, None]
            current = net.adc_currents(_factor(net.a).solve(net.rhs(dv * v, -dv * v)))
            out[b] += current[:, 0] * widths[b, k]
    return out
