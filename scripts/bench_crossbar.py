"""Row-wire resistance (crossbar.py): precompute time of the exact 2-D effective matrix, and how much it moves.

    .venv/bin/python scripts/bench_crossbar.py [--threads 1] [--r-row 0.15] [--splu-512]

Prints, for a 512 x 512 and a 512 x 64 tile (hold mode, r_wire = 0.15 Ω, adc_sides = both): the wall and CPU time of
``effective_conductance_2d`` with the nested-dissection solver and with the plain sparse LU (the 512 x 512 sparse LU
takes minutes: only with ``--splu-512``), against the 1-D ladder's τ ⊙ (G+ - G-). Then the effect of the row wires,
``|G_eff_2d - G_eff_1d| / g_max`` (max and mean) and the change of the column charge for random 8-bit inputs
(rms over columns and tokens, relative to the rms ideal charge), for three conductance patterns: every device at
g_max (worst case), both devices uniform in [0, g_max], and Gaussian weights mapped as in spec 1 (g_min = 0).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from aimc_runner.circuit import effective_conductance
from aimc_runner.circuit.crossbar import effective_conductance_2d

G_MAX = 25.0  # µS
R_WIRE = 0.15  # Ω


def timed(fn):
    """(result, wall s, CPU s) of one call: CPU time is robust to other jobs sharing the cores."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def patterns(rows: int, cols: int, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    w = rng.normal(0.0, 1.0, (rows, cols))
    s = G_MAX / np.abs(w).max()
    return {
        "all devices at g_max": (np.full((rows, cols), G_MAX), np.zeros((rows, cols))),
        "uniform [0, g_max] pairs": (rng.uniform(0, G_MAX, (rows, cols)), rng.uniform(0, G_MAX, (rows, cols))),
        "gaussian weights (spec 1)": (s * np.maximum(w, 0), s * np.maximum(-w, 0)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--r-row", type=float, default=0.15, help="row-wire resistance per segment, Ω")
    ap.add_argument("--splu-512", action="store_true", help="also time the sparse LU on 512 x 512 (minutes)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    kw = dict(r_wire_ohm=R_WIRE, r_row_ohm=args.r_row, adc_sides="both")
    with threadpool_limits(args.threads):
        print(f"# precompute, hold, r_wire = {R_WIRE} Ω, r_row = {args.r_row} Ω, {args.threads} BLAS thread(s)")
        for rows, cols in ((512, 64), (512, 512)):
            gp, gn = patterns(rows, cols, rng)["uniform [0, g_max] pairs"]
            effective_conductance(gp[:2, :2], gn[:2, :2], r_wire_ohm=R_WIRE)  # load the Numba kernels first
            _, w1, c1 = timed(lambda: effective_conductance(gp, gn, r_wire_ohm=R_WIRE, adc_sides="both"))
            nested, wn, cn = timed(lambda: effective_conductance_2d(gp, gn, solver="nested", **kw))
            line = f"{rows}x{cols}: 1-D ladder {w1 * 1e3:.1f} ms | 2-D nested {wn:.2f} s wall, {cn:.2f} s CPU"
            if cols <= 64 or args.splu_512:
                lu, ws, cs = timed(lambda: effective_conductance_2d(gp, gn, solver="splu", **kw))
                diff = np.abs(lu - nested).max() / np.abs(lu).max()
                line += f" | 2-D splu {ws:.2f} s wall, {cs:.2f} s CPU | nested vs splu {diff:.1e}"
            print(line, flush=True)

        print(f"\n# effect of r_row = {args.r_row} Ω on a 512 x 512 tile (r_wire = {R_WIRE} Ω, adc_sides = both)")
        n = rng.integers(-127, 128, (64, 512)).astype(np.float64)  # random 8-bit PWM inputs [tokens, rows]
        for name, (gp, gn) in patterns(512, 512, rng).items():
            g1 = effective_conductance(gp, gn, r_wire_ohm=R_WIRE, adc_sides="both")
            g2 = effective_conductance_2d(gp, gn, **kw)
            d = np.abs(g2 - g1) / G_MAX
            ideal = n @ (gp - gn)
            rms = float(np.sqrt(np.mean(ideal**2)))
            dq = float(np.sqrt(np.mean((n @ (g2 - g1)) ** 2))) / rms
            d1 = float(np.sqrt(np.mean((n @ (g1 - (gp - gn))) ** 2))) / rms
            print(f"{name:26s} |ΔG|/g_max max {d.max():.2e} mean {d.mean():.2e} | charge change rms {dq:.2e} "
                  f"(column-wire IR drop alone: {d1:.2e})", flush=True)


if __name__ == "__main__":
    main()
