"""Benchmark one 512x512 tile against a plain GEMM, all measured in this one run.

    .venv/bin/python scripts/bench_tile.py [--batch 64] [--threads N] [--repeats 50]

Prints: the plain float32 GEMM time ([batch, 512] @ [512, 512], torch, the same library the tile uses); the full
tile MVM (8-bit PWM + effective IR-drop + CCO ADC + ns read noise, float32) and its ratio to the GEMM; the
per-tile precompute (transfer factors tau alone, and the whole programming step); the time_stepped path (held
and floating idle rows) and its ratio; and the process's peak resident memory.
Targets (issue 3): full tile <= 3x GEMM; precompute <= 20 ms per tile; floating rows <= 20x GEMM (stretch).
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import numba
import numpy as np
import torch

from aimc_runner.circuit import transfer_factors
from aimc_runner.config import (AdcConfig, AdcKind, CircuitConfig, DeviceConfig, IdleRows, IrDropMethod, PwmConfig,
                                TileConfig)
from aimc_runner.tile import AnalogTileArray, ChipRngs


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds, after two warm-up calls."""
    fn()
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def tile_cfg(idle: IdleRows = IdleRows.hold, method: IrDropMethod = IrDropMethod.effective, read_noise=True,
             adc=AdcKind.cco) -> TileConfig:
    return TileConfig(name="bench", analog=True, device=DeviceConfig(read_noise=read_noise),
                      circuit=CircuitConfig(irdrop=True, idle_rows=idle, method=method),
                      adc=AdcConfig(kind=adc), pwm=PwmConfig(enabled=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch and numba threads (default: library default)")
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    w = torch.as_tensor(rng.normal(0, 0.05, (512, 512)), dtype=torch.float32)  # [out, in]
    x = torch.as_tensor(rng.normal(0, 1, (args.batch, 512)), dtype=torch.float32)
    r_in = float(x.abs().max())

    t_gemm = timed(lambda: x @ w.T, args.repeats)

    full = AnalogTileArray(w, tile_cfg(), ChipRngs.from_seed(0))
    gen = torch.Generator().manual_seed(0)
    t_full = timed(lambda: full(x, r_in, gen), args.repeats)
    no_noise = AnalogTileArray(w, tile_cfg(read_noise=False))
    t_irdrop_adc = timed(lambda: no_noise(x, r_in), args.repeats)

    m = full.blocks[0]
    t_tau = timed(lambda: transfer_factors(m.g_pos, m.g_neg, r_wire_ohm=0.15, adc_sides="both"), args.repeats)
    t_program = timed(lambda: AnalogTileArray(w, tile_cfg(), ChipRngs.from_seed(0)), max(3, args.repeats // 10))

    ts_hold = AnalogTileArray(w, tile_cfg(method=IrDropMethod.time_stepped, read_noise=False))
    t_ts_hold = timed(lambda: ts_hold(x, r_in), 3)
    ts_float = AnalogTileArray(w, tile_cfg(IdleRows.float, IrDropMethod.time_stepped, read_noise=False))
    t_ts_float = timed(lambda: ts_float(x, r_in), 3)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"numba threads {numba.get_num_threads()}, torch {torch.__version__}, numba {numba.__version__}")
    print(f"shapes: x [{args.batch}, 512] @ W^T [512, 512]; medians of {args.repeats} calls")
    print(f"plain float32 GEMM                          {t_gemm * 1e3:9.3f} ms   1.00x")
    print(f"full tile (PWM+IR-drop+CCO+read noise)      {t_full * 1e3:9.3f} ms  {t_full / t_gemm:5.2f}x GEMM")
    print(f"  without read noise (PWM+IR-drop+CCO)      {t_irdrop_adc * 1e3:9.3f} ms  {t_irdrop_adc / t_gemm:5.2f}x GEMM")
    print(f"precompute: transfer factors tau 512x512    {t_tau * 1e3:9.3f} ms")
    print(f"precompute: programming the whole tile      {t_program * 1e3:9.3f} ms")
    print(f"time_stepped, idle rows held                {t_ts_hold * 1e3:9.1f} ms  {t_ts_hold / t_gemm:7.0f}x GEMM")
    print(f"time_stepped, idle rows floating            {t_ts_float * 1e3:9.1f} ms  {t_ts_float / t_gemm:7.0f}x GEMM")
    print(f"peak resident memory of this process        {peak_mb:9.0f} MB")


if __name__ == "__main__":
    main()
