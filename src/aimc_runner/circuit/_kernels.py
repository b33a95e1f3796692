"""Numba kernels for the column ladder (spec tile-model.md, section 3). Private: call them through ``ladder.py``.

Arrays only: float64 conductances in µS, float64/int64 index data, scalars. No config, no torch, no RNG.

Conventions shared by every kernel
----------------------------------
* Columns are swept from the node farthest from their ADC (sweep position ``m = 0``) to the nearest
  (``m = rows - 1``). ``flip[j]`` marks a column read at the north edge, whose row ``i = rows - 1 - m`` sits at
  sweep position m (else ``i = m``). :func:`transfer_factors` applies ``flip`` itself; the time-stepped solver
  takes conductances already in sweep order (:func:`flip_columns`) and uses ``flip`` only to map the per-row
  durations onto sweep positions. No kernel looks at ``adc_sides``.
* Wire resistance enters as ``rho = r_wire_ohm * 1e-6`` (MΩ), so that ``g [µS] * rho [MΩ]`` is dimensionless.
  Node m is joined to node m + 1 by ``rho`` and the last node to the ADC (the reference, held at v_read) by
  ``rho / 2``. All recursions are written with resistances and ``1 + g * rho`` factors, never ``1 / rho``: at
  ``rho = 0`` every factor is exactly 1, and small ``rho`` loses no digits.
* Potentials are relative to v_read. A cell is a Norton source: injected current ``J = s * dv * (G+ - G-)`` [µA]
  in parallel with its load ``g = G+ + G-`` [µS] to the reference.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

_BLOCK = 64  # columns per parallel task: the row recursions run down a block with the columns as the SIMD lane
_RENORM = 8  # float-mode sweep: divide out the homogeneous scale every this many nodes


@numba.njit(cache=True, parallel=True)
def flip_columns(a, flip):
    """Copy of ``a`` [rows, cols] with the rows of the columns where ``flip`` is set reversed (its own inverse)."""
    rows, cols = a.shape
    out = np.empty((rows, cols))
    for m in prange(rows):
        for j in range(cols):
            out[m, j] = a[rows - 1 - m, j] if flip[j] else a[m, j]
    return out


@numba.njit(cache=True, parallel=True)
def transfer_factors(g_pos, g_neg, flip, rho_seg):
    """τ for every column, from the two one-sided ladder admittances (spec 3.1).

    ``g_pos``, ``g_neg``: [nodes, cols] µS in *row* order; ``flip``: [cols] north-read columns (the kernel reads
    and writes them reversed, so no sweep-ordered copies are made). ``rho_seg``: [nodes] MΩ, the wire from sweep
    position m toward the ADC (``rho`` between cells and ``rho / 2`` into the ADC for the exact model; other values
    for lumped segments). Returns τ [nodes, cols] in row order.

    For a current injected at node m (every node loaded by its g = G+ + G- to the reference):
    ``yl[m]`` is the admittance looking toward the far end through the segment (m-1, m),
    ``zr[m]`` the impedance looking toward the ADC through the segment leaving m. The injected current divides at m
    into the ADC side with fraction ``1 / (1 + zr[m] * (g[m] + yl[m]))``; arriving at each later node k it divides
    again between that node's load and the rest of the path, keeping ``1 / (1 + g[k] * zr[k])``. τ is the product.
    """
    rows, cols = g_pos.shape
    tau = np.empty((rows, cols))
    for blk in prange((cols + _BLOCK - 1) // _BLOCK):
        c0 = blk * _BLOCK
        w = min(cols, c0 + _BLOCK) - c0
        g = np.empty((rows, w))  # this block's loads in sweep order
        yl = np.empty((rows, w))
        for m in range(rows):
            for jj in range(w):
                i = rows - 1 - m if flip[c0 + jj] else m
                g[m, jj] = g_pos[i, c0 + jj] + g_neg[i, c0 + jj]
        # Toward the far end: yl = S / (1 + rho S), S = load of node m-1 plus everything beyond it.
        yl[0, :] = 0.0
        for m in range(1, rows):
            rho = rho_seg[m - 1]
            for jj in range(w):
                s = g[m - 1, jj] + yl[m - 1, jj]
                yl[m, jj] = s / (1.0 + rho * s)
        # Toward the ADC, accumulated from the ADC end: zr = the half segment into the ADC, then one full segment
        # per node; ``through`` = fraction of a current entering node m+1 from the far side that reaches the ADC.
        # yl is overwritten with τ (sweep order) as the pass goes.
        zr = np.full(w, rho_seg[rows - 1])
        through = np.ones(w)
        for m in range(rows - 1, -1, -1):
            rho = rho_seg[m]
            for jj in range(w):
                if m < rows - 1:
                    z = zr[jj]
                    zr[jj] = rho + z / (1.0 + g[m + 1, jj] * z)
                z = zr[jj]
                yl[m, jj] = through[jj] / (1.0 + z * (g[m, jj] + yl[m, jj]))
                through[jj] = through[jj] / (1.0 + g[m, jj] * z)
        for m in range(rows):
            for jj in range(w):
                i = rows - 1 - m if flip[c0 + jj] else m
                tau[i, c0 + jj] = yl[m, jj]
    return tau


@numba.njit(cache=True, parallel=True)
def hold_divisors(g, rho):
    """Norton-sweep divisors for ``hold`` mode: ``inv_d[m, j] = 1 / (1 + rho_m * (Y_m + g_m))``, sweep order.

    With every cell connected the loading, and so the divisors, do not depend on the active set; computing them once
    per column is the same arithmetic as recomputing them in every slot.
    """
    rows, cols = g.shape
    inv_d = np.empty((rows, cols))
    for blk in prange((cols + _BLOCK - 1) // _BLOCK):
        c0 = blk * _BLOCK
        c1 = min(cols, c0 + _BLOCK)
        y = np.zeros(c1 - c0)
        for m in range(rows):
            r = rho if m < rows - 1 else 0.5 * rho
            for jj in range(c1 - c0):
                yt = y[jj] + g[m, c0 + jj]
                inv = 1.0 / (1.0 + r * yt)
                inv_d[m, c0 + jj] = inv
                y[jj] = yt * inv
    return inv_d


@numba.njit(cache=True)
def activity_levels(abs_n):
    """Distinct active sets per token: rows switch off in order of |n| (all pulses start at t = 0).

    ``abs_n``: [batch, rows] int64 pulse lengths in slots. Returns
    ``widths`` [batch, rows] float64 (slots spent in each distinct active set, padded with 0),
    ``n_levels`` [batch] int64, and ``k_on`` [batch, rows] int64: row i is on during levels ``0 .. k_on - 1``.
    Level k is the slots ``u_{k-1} <= t < u_k`` for the sorted distinct positive lengths ``u``; a row is on there
    iff ``|n_i| >= u_k``, so it is on for a prefix of the levels.
    """
    batch, rows = abs_n.shape
    widths = np.zeros((batch, rows))
    n_levels = np.zeros(batch, dtype=np.int64)
    k_on = np.zeros((batch, rows), dtype=np.int64)
    for b in range(batch):
        u = np.unique(abs_n[b])  # sorted, distinct
        start = 1 if u[0] == 0 else 0
        n = u.size - start
        prev = 0
        for k in range(n):
            widths[b, k] = u[start + k] - prev
            prev = u[start + k]
        n_levels[b] = n
        k_on[b] = np.searchsorted(u[start:], abs_n[b], side="right")
    return widths, n_levels, k_on


@numba.njit(cache=True, parallel=True)
def time_stepped(g, j_src, inv_d, sign, widths, n_levels, k_on, flip, rho, float_mode):
    """Slot-by-slot charge: one Norton sweep of the column per distinct active set (spec 3, 3.2).

    ``g``, ``j_src``: [rows, cols] load G+ + G- [µS] and signed source dv * (G+ - G-) [µA], sweep order.
    ``inv_d``: [rows, cols] hold-mode divisors (ignored when ``float_mode``). ``sign``: [batch, rows] pulse sign.
    ``widths``, ``n_levels``, ``k_on``: from :func:`activity_levels`. Returns ``I * slots`` summed over the window,
    [batch, cols] in µA·slot (multiply by t_slot for fC).

    The sweep walks from the far end toward the ADC carrying the Norton equivalent (current ``I``, admittance ``Y``)
    of everything behind it: add the node (``I += J`` if on; ``Y += g`` unless the cell floats), then pass a
    segment of resistance rho_m: ``(I, Y) <- (I, Y) / (1 + rho_m Y)``. After the half segment into the ADC, ``I`` is
    the ADC current. All levels of one (token, column) are swept together so the inner loop vectorises.

    In ``float`` mode the divisor changes with the active set, so the state is kept in homogeneous form
    ``(I, Y) = (cur, adm) / w``: a segment is then ``w += rho_m adm`` (no division), and ``w`` is divided out every
    ``_RENORM`` nodes. Per node ``w`` grows by at most ``2 + rho g`` (``Y < 1 / rho`` behind a segment), so this
    cannot overflow for any physical resistance.
    """
    rows, cols = g.shape
    batch = sign.shape[0]
    out = np.zeros((batch, cols))
    for p in prange(batch * cols):
        b = p // cols
        j = p - b * cols
        nl = n_levels[b]
        if nl == 0:
            continue
        cur = np.zeros(nl)
        adm = np.zeros(nl)
        w = np.ones(nl)
        for m in range(rows):
            i = rows - 1 - m if flip[j] else m
            kon = k_on[b, i]
            src = sign[b, i] * j_src[m, j]
            if float_mode:
                r = rho if m < rows - 1 else 0.5 * rho
                gm = g[m, j]
                for k in range(kon):  # cell on: connected and driven
                    cur[k] += src * w[k]
                    adm[k] += gm * w[k]
                    w[k] += r * adm[k]
                for k in range(kon, nl):  # cell off: disconnected, only the wire segment remains
                    w[k] += r * adm[k]
                if m % _RENORM == _RENORM - 1 or m == rows - 1:
                    for k in range(nl):
                        inv = 1.0 / w[k]
                        cur[k] *= inv
                        adm[k] *= inv
                        w[k] = 1.0
            else:
                inv = inv_d[m, j]
                for k in range(kon):
                    cur[k] = (cur[k] + src) * inv
                for k in range(kon, nl):
                    cur[k] = cur[k] * inv
        total = 0.0
        for k in range(nl):
            total += cur[k] * widths[b, k]
        out[b, j] = total
    return out


@numba.njit(cache=True)
def column_potentials(g, j_src, rho):
    """Node potentials [V, relative to v_read] and ADC current [µA] of one column for one fixed set of sources.

    ``g``: [rows] connected load per node (0 for a floating cell), ``j_src``: [rows] injected current, sweep order.
    Forward Norton sweep as in :func:`time_stepped`, then back-substitution from the ADC:
    ``u_m = (u_{m+1} + rho I_m) / (1 + rho Y_m)`` with ``(I_m, Y_m)`` the Norton equivalent of nodes ``0..m``
    (the wire current leaving m is ``I_m - Y_m u_m``). Used to check KCL: sum of cell currents == ADC current.
    """
    rows = g.shape[0]
    i_tot = np.empty(rows)
    y_tot = np.empty(rows)
    cur = 0.0
    adm = 0.0
    for m in range(rows):
        i_tot[m] = cur + j_src[m]
        y_tot[m] = adm + g[m]
        r = rho if m < rows - 1 else 0.5 * rho
        d = 1.0 + r * y_tot[m]
        cur = i_tot[m] / d
        adm = y_tot[m] / d
    u = np.empty(rows)
    nxt = 0.0  # the ADC node
    for m in range(rows - 1, -1, -1):
        r = rho if m < rows - 1 else 0.5 * rho
        u[m] = (nxt + r * i_tot[m]) / (1.0 + r * y_tot[m])
        nxt = u[m]
    return u, cur
