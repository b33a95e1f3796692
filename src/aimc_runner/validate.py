"""``aimc-validate``: the fast tile model (``effective`` and ``time_stepped``) against ngspice, on any columns.

A source (a worst-case pattern or a real model layer, :mod:`validate_sources`) gives the conductances of the
selected columns and one input; for every idle-row convention and wire resistance asked for, each column is written
as an ngspice netlist (:func:`circuit.spice.write_netlist`, one column per netlist so that columns run in parallel:
with ideal row wires they do not interact) and simulated in batch mode, and the same columns go through both model
paths.

Reported per column: the charge (fC) from SPICE, ``effective`` (``hold`` only: it is not exact for ``float``),
``time_stepped`` and the ideal product without IR-drop (the IR-drop, ``|q_spice - q_ideal| / q_fs``, shows how
much there is to get right); the relative error ``|q_model - q_spice| / |q_spice|`` and
the full-scale error ``|q_model - q_spice| / q_fs`` with ``q_fs = dv·t_slot·n_max·g_max·n_in`` (every used row on at
g_max for the whole window, as the uniform ADC's full scale); wall times and speed-ups over SPICE.

Of the tile configuration only the conductance range, the PWM resolution (one window of ``n_max`` slots) and the
circuit (``v_read``, ``dv``, ``t_slot``, ``adc_sides``, ``placement``, ``r_row_ohm``) are used: device noise and the
ADC are outside what SPICE checks. ``conventions`` and ``r_wire_ohm`` list what to check, each against every column.

Row probes (``row_probes`` positions): one column with every cell at g_max and a single row on, moved from the far
end to the ADC; the plot shows the model's error and the IR-drop (``|q_spice - q_ideal| / q_ideal``) against the
row's position.

With row-wire resistance (``tile.circuit.r_row_ohm > 0``) the columns couple through the row wires, so the slice is
one netlist per case (:func:`circuit.spice.write_netlist` with ``r_row_ohm``) and the model is
:func:`circuit.crossbar.column_charge_2d`. The slice is simulated as a tile of ``cols`` columns: its row wires are
driven at the slice's west edge and carry the current of the selected columns only, not that of the tile's other
columns (nor the wire segments west of ``column_offset``), so the row drop is the one of a ``rows`` x ``cols`` tile.
Each column also gets ``q_no_rows`` (the column-ladder model of the same column without row wires, ``time_stepped``)
and ``row_effect = (q_spice - q_no_rows) / |q_no_rows|``, what the row wires change; the summary gives its max and
mean magnitude. Row probes (a one-column check of the column wire) are skipped. Because a row wire's drop grows
with the current of every column east of the driver, the slice understates what a full tile sees: for
``source=layer`` (with ``full_width``) the model alone (``effective``, hold) also gives the row effect over every
column of the layer's first tile, row wires driven from tile column 0, and over the selected columns in place.

Outputs in the run folder: ``validate.txt`` (the printed tables), ``validate.json``, ``validate.png`` and, with
``keep_netlists``, every netlist under ``netlists/``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import hydra
import numpy as np
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import results
from .atomic import write_json_atomic, write_text_atomic
from .circuit import pwm
from .circuit.crossbar import column_charge_2d
from .circuit.ladder import column_charge
from .circuit.spice import SpiceError, SpiceRun, ngspice_available, run_netlist, write_netlist
from .config import AdcSides, IdleRows, ModelConfig, TaskConfig, TileConfig, _require, register_configs
from .validate_sources import BadInput, Case, Source, layer_case, pattern, row_probe

log = logging.getLogger("aimc_runner.validate")
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# ngspice seconds per netlist ≈ cost per timepoint × timepoints + start-up. Timepoints ≈ window + 1 + k·levels
# (window: slots simulated, one step per slot at most; levels: distinct pulse lengths: after each switching time
# ngspice restarts at a tenth of the gap and doubles its step, ~5 points for hold's one-slot ramps and ~27 for float's
# short ones). Cost per timepoint: one column, ∝ rows; a coupled slice (row wires), ∝ rows^1.6·cols^3.2 (measured:
# ngspice-39's sparse LU of the 2-D grid costs about what a band of width ~3·cols would). Fitted to random and all-on netlists of
# 128-512 rows (one column) and 64-512 x 8-32 (coupled) on a 2-core machine shared with other jobs, rounded up:
# e.g. 512 x 16 coupled hold, 127 levels: measured 330-430 s, estimated 380 s.
_POINTS_PER_LEVEL = {IdleRows.hold: 5, IdleRows.float: 27}
_S_PER_POINT = {IdleRows.hold: 0.7e-3, IdleRows.float: 2e-3}  # one column of 512 rows
_S_PER_POINT_2D = {IdleRows.hold: 0.5, IdleRows.float: 0.9}  # a coupled slice of 512 x 16
_SPICE_START_S = 0.1


@dataclass
class ValidateConfig:
    tile: TileConfig = field(default_factory=TileConfig)
    model: ModelConfig = field(default_factory=ModelConfig)  # source=layer only
    task: TaskConfig = field(default_factory=TaskConfig)  # source=layer: sentences from its first dev split
    train: Any = None  # unused: the analog tile presets set a training default (`override /train`)
    source: Source = Source.random
    layer: str = "encoder.layer.0.attention.self.query"
    sentences: int = 8
    token: Optional[int] = None  # None: the captured token with the largest sum |n| (the largest IR-drop)
    rows: int = 64  # physical rows of the simulated tile (the wire length)
    cols: int = 8
    column_offset: int = 0  # first column (sets parity for adc_sides=both; for a layer, its first output)
    r_wire_ohm: List[float] = field(default_factory=list)  # empty: tile.circuit.r_wire_ohm
    conventions: List[IdleRows] = field(default_factory=lambda: [IdleRows.hold, IdleRows.float])
    row_probes: int = 8
    tolerance: float = 1e-5
    workers: Optional[int] = None  # parallel ngspice processes; None: the CPUs this process may use
    max_minutes: float = 10.0  # refuse a slice whose estimated ngspice time exceeds this, unless force=true
    force: bool = False
    keep_netlists: bool = True
    full_width: bool = True  # source=layer, row wires: also the model-only row effect over the whole tile
    print_columns: int = 16  # per-column rows printed per case (all of them are in validate.json)
    seed: int = 0
    ngspice: str = "ngspice"

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "sentences"):
            _require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        _require(self.column_offset >= 0, "column_offset", f"must be >= 0, got {self.column_offset}")
        _require(self.row_probes >= 0, "row_probes", f"must be >= 0, got {self.row_probes}")
        _require(all(math.isfinite(r) and r >= 0 for r in self.r_wire_ohm), "r_wire_ohm", "must be >= 0")
        _require(len(self.conventions) > 0, "conventions", "name at least one of hold, float")
        _require(self.tolerance > 0, "tolerance", f"must be > 0, got {self.tolerance}")
        _require(self.max_minutes > 0, "max_minutes", f"must be > 0, got {self.max_minutes}")
        _require(self.workers is None or self.workers > 0, "workers", f"must be > 0 or null, got {self.workers}")
        _require(self.source == Source.layer or self.column_offset + self.cols <= self.tile.circuit.cols,
                 "cols", f"column_offset + cols exceeds the tile's {self.tile.circuit.cols} columns")
        if not self.r_wire_ohm:
            self.r_wire_ohm = [self.tile.circuit.r_wire_ohm]


def register() -> None:
    register_configs()  # the `plain` resolver
    ConfigStore.instance().store(name="validate_schema", node=ValidateConfig)


register()


# ----------------------------------------------------------------------------------------------------------------
# ngspice


class ValidationFailed(RuntimeError):
    """The model and SPICE disagree beyond the tolerance (the outputs are written first)."""


@dataclass
class _Job:
    key: tuple  # ("col", case index, column), ("slice", case index) or ("probe", case index, row)
    g_pos: np.ndarray  # [rows, 1] oriented for a south ADC, or [rows, cols] the coupled slice read at adc_sides
    g_neg: np.ndarray
    durations: np.ndarray  # [rows]
    idle: IdleRows
    r_wire_ohm: float
    path: Path
    r_row_ohm: float = 0.0
    adc_sides: str = "south"


def spice_seconds(idle: IdleRows, rows: int, cols: int, durations, coupled: bool) -> float:
    """Estimated ngspice wall time of one netlist: one column (``coupled=False``) or a coupled rows x cols slice."""
    n = np.abs(np.asarray(durations))
    points = int(n.max(initial=0)) + 1 + _POINTS_PER_LEVEL[idle] * len(np.unique(n[n != 0]))
    if coupled:
        per_point = _S_PER_POINT_2D[idle] * (rows / 512) ** 1.6 * (cols / 16) ** 3.2
    else:
        per_point = _S_PER_POINT[idle] * rows / 512
    return per_point * points + _SPICE_START_S


def estimate_seconds(jobs: list, workers: int) -> float:
    """Estimated wall time of ngspice jobs (seconds each) on ``workers``: the longest one, or the total shared."""
    return max(sum(jobs) / max(1, min(workers, len(jobs))), max(jobs, default=0.0))


def ngspice_version(exe: str) -> str:
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"ngspice-\S+", out)
    return found.group(0) if found else out.strip()[:80]


def _spice_job(job: _Job, circ, exe: str) -> SpiceRun:
    """One netlist through ngspice (a run that stops on "timestep too small" is rerun relaxed: ``run_netlist``)."""
    text = write_netlist(job.g_pos, job.g_neg, job.durations, r_wire_ohm=job.r_wire_ohm, v_read_v=circ.v_read_v,
                         dv_v=circ.dv_v, t_slot_ns=circ.t_slot_ns, idle_rows=job.idle.value, adc_sides=job.adc_sides,
                         r_row_ohm=job.r_row_ohm)
    return run_netlist(text, job.path, cols=job.g_pos.shape[1], executable=exe)


def _run_spice(jobs: list, circ, exe: str, workers: int, net_dir: Optional[Path]) -> dict:
    """key -> :class:`SpiceRun` of every job, ``workers`` ngspice processes at a time; netlists are kept under
    ``net_dir`` (job paths are relative to it), or in a temporary folder that is removed."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="aimc-validate-") as tmp:
        root = net_dir or Path(tmp)
        for job in jobs:
            job.path = root / job.path
            job.path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_spice_job, job, circ, exe): job.key for job in jobs}
            try:
                for done, fut in enumerate(as_completed(futures), 1):
                    out[futures[fut]] = fut.result()
                    if done % max(1, len(jobs) // 10) == 0 or done == len(jobs):
                        log.info("ngspice %d/%d runs done (%.0f s)", done, len(jobs), time.perf_counter() - t0)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # don't wait for the queue after a failure or Ctrl-C
                raise
    return out


# ----------------------------------------------------------------------------------------------------------------
# The model paths


def _timed(fn, min_s: float = 0.05, max_s: float = 2.0) -> tuple[Any, float]:
    """fn()'s result and its best wall time over repeats totalling at least ``min_s`` (and 3 calls, unless they
    take over ``max_s``: a coupled float slice is one factorisation per active set)."""
    best, total, reps = math.inf, 0.0, 0
    while total < min_s or (reps < 3 and total < max_s):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, total, reps = min(best, dt), total + dt, reps + 1
    return out, best


def _model(case: Case, idle: IdleRows, r: float, circ, sides: str, top: int, r_row: float = 0.0) -> dict:
    """Both model paths (``effective``: hold only), the ideal product and, with row wires (``r_row`` Ω > 0, the
    coupled 2-D model), ``no_rows``: the column-ladder model of the same columns without them."""
    kw = dict(v_read_v=circ.v_read_v, dv_v=circ.dv_v, t_slot_ns=circ.t_slot_ns, adc_sides=sides, window_slots=top)
    gp, gn, n = case.g_pos, case.g_neg, case.durations
    charge = (functools.partial(column_charge_2d, gp, gn, n, r_wire_ohm=r, r_row_ohm=r_row, **kw) if r_row > 0
              else functools.partial(column_charge, gp, gn, n, r_wire_ohm=r, **kw))
    ts, t_ts = _timed(lambda: charge(idle_rows=idle, method="time_stepped"))
    out = {"time_stepped": ts, "time_stepped_s": t_ts, "effective": None, "effective_s": None,
           "ideal": column_charge(gp, gn, n, r_wire_ohm=0.0, **kw), "no_rows": None}
    if idle == IdleRows.hold:
        out["effective"], out["effective_s"] = _timed(lambda: charge(idle_rows=idle, method="effective"))
    if r_row > 0:
        out["no_rows"] = column_charge(gp, gn, n, r_wire_ohm=r, idle_rows=idle, method="time_stepped", **kw)
    return out


def _signed_rel(q, ref) -> np.ndarray:
    """``(q - ref) / |ref|`` (±inf where ref = 0 and q differs)."""
    q, ref = np.asarray(q, float), np.asarray(ref, float)
    diff = q - ref
    with np.errstate(invalid="ignore"):  # 0 · inf where both are 0
        off = np.where(diff == 0, 0.0, np.sign(diff) * np.inf)
    return np.where(ref != 0, diff / np.where(ref != 0, np.abs(ref), 1.0), off)


def _rel(q, ref) -> np.ndarray:
    q, ref = np.asarray(q, float), np.asarray(ref, float)
    diff = np.abs(q - ref)
    return np.where(ref != 0, diff / np.where(ref != 0, np.abs(ref), 1.0), np.where(diff == 0, 0.0, np.inf))


# ----------------------------------------------------------------------------------------------------------------
# The run


def build_case(cfg: ValidateConfig) -> Case:
    if cfg.source == Source.layer:
        return layer_case(cfg.model, cfg.task, cfg.tile, layer=cfg.layer, sentences=cfg.sentences, token=cfg.token,
                          rows=cfg.rows, cols=cfg.cols, column_offset=cfg.column_offset, seed=cfg.seed)
    return pattern(cfg.source, cfg.rows, cfg.cols, cfg.tile, cfg.seed)


def run_validation(cfg: ValidateConfig, out_dir: Path) -> dict:
    """Build the case, check the time budget, run the model paths and ngspice, write the outputs; return the record."""
    t_start = time.perf_counter()
    if not ngspice_available(cfg.ngspice):
        raise BadInput(f"`{cfg.ngspice}` not found: install the Debian package `ngspice` (sudo apt-get install "
                       "ngspice), or set ngspice=/path/to/ngspice")
    out_dir = Path(out_dir)
    circ, top = cfg.tile.circuit, pwm.n_max(cfg.tile.pwm.bits)
    sides = circ.adc_sides.value
    case = build_case(cfg)
    rows, cols = case.g_pos.shape
    workers = cfg.workers or len(os.sched_getaffinity(0))
    cases = [(idle, float(r)) for idle in cfg.conventions for r in cfg.r_wire_ohm]
    r_row = float(circ.r_row_ohm)
    coupled = r_row > 0  # row wires: one netlist per case for the whole slice
    probe_rows = sorted({int(round(p)) for p in np.linspace(0, rows - 1, cfg.row_probes)}) if cfg.row_probes else []
    if coupled and probe_rows:
        log.info("row probes skipped: they check one column's wire, and with row wires the slice is one netlist")
        probe_rows = []
    max_n = int(np.abs(case.durations).max(initial=0))
    load = ([spice_seconds(idle, rows, cols, case.durations, coupled=True) for idle, _ in cases] if coupled else
            [spice_seconds(idle, rows, 1, case.durations, coupled=False) for idle, _ in cases for _ in range(cols)]
            + [spice_seconds(idle, rows, 1, [top], coupled=False) for idle, _ in cases for _ in probe_rows])
    estimate = estimate_seconds(load, workers)
    what = f"{rows} x {cols} coupled" if coupled else f"{rows} rows"
    log.info("%d ngspice runs (%s) on %d workers: estimated %.0f s", len(load), what, workers, estimate)
    if estimate > 60 * cfg.max_minutes and not cfg.force:
        raise BadInput(f"the slice is too large for the time limit: {len(load)} ngspice runs of {what} on "
                       f"{workers} workers, estimated {estimate / 60:.1f} min > max_minutes={cfg.max_minutes:g}; "
                       "reduce rows/cols/conventions/r_wire_ohm/row_probes, raise max_minutes, or set force=true")

    # Model paths first, alone on the CPUs, so their timings are clean. A column read at the north edge
    # (adc_sides=both, odd tile column) is the same circuit as a south-read column with its rows reversed.
    north = [sides == AdcSides.both.value and (cfg.column_offset + j) % 2 == 1 for j in range(cols)]
    model_case = case
    if sides == AdcSides.both.value and cfg.column_offset % 2 == 1:  # the model flips odd *slice* columns
        model_case = Case(case.g_pos[::-1], case.g_neg[::-1], case.durations[::-1], case.n_in)
    # The row wires do not change under that flip (each runs along one row), so a coupled slice does the same.
    column_charge(np.ones((2, 1)), np.ones((2, 1)), [1, 1], r_wire_ohm=1.0, method="time_stepped")  # JIT warm-up
    models = [_model(model_case, idle, r, circ, sides, top, r_row) for idle, r in cases]
    probe_cases = {p: row_probe(rows, p, cfg.tile) for p in probe_rows}
    probes = [{p: _model(pc, idle, r, circ, "south", top) for p, pc in probe_cases.items()} for idle, r in cases]

    jobs = []
    for c, (idle, r) in enumerate(cases):
        folder = f"{idle.value}_r{r:g}"
        if coupled:
            last = cfg.column_offset + cols - 1
            jobs.append(_Job(("slice", c), model_case.g_pos, model_case.g_neg, model_case.durations, idle, r,
                             Path(folder, f"cols{cfg.column_offset}-{last}.cir"), r_row, sides))
        for j in range(0 if coupled else cols):
            flip = slice(None, None, -1) if north[j] else slice(None)
            jobs.append(_Job(("col", c, j), case.g_pos[flip, j:j + 1], case.g_neg[flip, j:j + 1],
                             case.durations[flip], idle, r, Path(folder, f"col{cfg.column_offset + j}.cir")))
        for p, pc in probe_cases.items():
            jobs.append(_Job(("probe", c, p), pc.g_pos, pc.g_neg, pc.durations, idle, r,
                             Path(folder, f"probe_row{p}.cir")))
    t_spice = time.perf_counter()
    spice = _run_spice(jobs, circ, cfg.ngspice, workers, out_dir / "netlists" if cfg.keep_netlists else None)
    t_spice = time.perf_counter() - t_spice

    q_fs = circ.dv_v * circ.t_slot_ns * top * cfg.tile.device.g_max_us * case.n_in
    record_cases, failed = [], []
    for c, (idle, r) in enumerate(cases):
        if coupled:  # one run for the slice: each column is charged an equal share of its wall time
            run = spice[("slice", c)]
            runs = [SpiceRun(np.array([q]), run.relaxed, run.wall_s / cols) for q in run.charge_fc]
        else:
            runs = [spice[("col", c, j)] for j in range(cols)]
        rec = _case_record(idle, r, models[c], runs, q_fs, cfg, north)
        rec["row_probes"] = [_probe_record(p, probes[c][p], spice[("probe", c, p)], rows) for p in probe_rows]
        rec["pass"] = rec["pass"] and all(pr[f"rel_error_{p}"] <= cfg.tolerance
                                          for pr in rec["row_probes"] for p in rec["paths"])
        failed += [f"{idle.value}/{r:g} Ω"] if not rec["pass"] else []
        record_cases.append(rec)
    full = []  # row wires on a layer: the model alone over every column of its first tile
    if coupled and cfg.full_width and case.g_tile is not None:
        full = [_full_width(case, circ, r, top, cfg.column_offset, cols, q_fs)
                for r in dict.fromkeys(map(float, cfg.r_wire_ohm))]
    record = {
        "schema_version": 1, "kind": "validate", "source": cfg.source.value, "case": case.info,
        "rows": rows, "cols": cols, "r_row_ohm": r_row, "coupled": coupled, "n_in": case.n_in, "window_slots": top,
        "q_full_scale_fc": q_fs, "max_pulse_slots": max_n, "tolerance": cfg.tolerance, "pass": not failed,
        "cases": record_cases, "summary": _summary(record_cases), "full_width": full,
        "wall_s": {"estimate_spice": estimate, "spice": t_spice, "total": time.perf_counter() - t_start},
        "workers": workers, "ngspice": ngspice_version(cfg.ngspice), "versions": results.versions(),
        "git": results.git_revision(), "machine": results.machine(),
        "config": {k: v for k, v in OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True).items()
                   if k != "train"},
    }
    from .validate_report import plot, table  # matplotlib only when writing

    text = table(record, cfg.print_columns)
    print(text, flush=True)
    write_text_atomic(out_dir / "validate.txt", text + "\n")
    write_json_atomic(out_dir / "validate.json", record)
    plot(record, out_dir / "validate.png")
    log.info("wrote %s", out_dir / "validate.json")
    if failed:
        raise ValidationFailed(f"model and SPICE disagree beyond tolerance {cfg.tolerance:g} in {', '.join(failed)}: "
                       f"see {out_dir / 'validate.json'}")
    return record


def _case_record(idle, r, model: dict, spice: list, q_fs: float, cfg: ValidateConfig, north: list) -> dict:
    q_spice = np.array([s.charge_fc[0] for s in spice])
    t_sp = np.array([s.wall_s for s in spice])
    cols = len(q_spice)
    no_rows = model["no_rows"]
    row_effect = None if no_rows is None else _signed_rel(q_spice, no_rows)
    paths = ["effective", "time_stepped"] if model["effective"] is not None else ["time_stepped"]
    columns = []
    for j in range(cols):
        row = {"column": cfg.column_offset + j, "adc": "north" if north[j] else "south",
               "q_spice_fc": float(q_spice[j]), "q_ideal_fc": float(model["ideal"][j]), "spice_s": float(t_sp[j]),
               "spice_relaxed": spice[j].relaxed}
        if row_effect is not None:
            row["q_no_rows_fc"], row["row_effect"] = float(no_rows[j]), float(row_effect[j])
        for p in ("effective", "time_stepped"):
            q = model[p]
            row[f"q_{p}_fc"] = None if q is None else float(q[j])
            row[f"rel_error_{p}"] = None if q is None else float(_rel(q[j], q_spice[j]))
            row[f"fs_error_{p}"] = None if q is None else float(abs(q[j] - q_spice[j]) / q_fs)
            row[f"speedup_{p}"] = None if q is None else float(t_sp[j] / (model[f"{p}_s"] / cols))
        columns.append(row)
    worst = {p: float(_rel(model[p], q_spice).max()) for p in paths}
    return {
        "idle_rows": idle.value, "r_wire_ohm": r, "columns": columns, "paths": paths,
        "max_rel_error": worst,
        "max_fs_error": {p: float((np.abs(model[p] - q_spice) / q_fs).max()) for p in paths},
        "ir_drop_fs": float((np.abs(q_spice - model["ideal"]) / q_fs).max()),  # how much there is to get right
        "timing_s": {"spice_total": float(t_sp.sum()), "spice_per_column": float(t_sp.mean()),
                     **{p: model[f"{p}_s"] for p in paths}},
        "speedup": {p: float(t_sp.sum() / model[f"{p}_s"]) for p in paths},
        "row_effect": None if row_effect is None else {"max_abs": float(np.abs(row_effect).max()),
                                                       "mean_abs": float(np.abs(row_effect).mean())},
        "pass": all(v <= cfg.tolerance for v in worst.values()),
    }


def _full_width(case: Case, circ, r: float, top: int, offset: int, cols: int, q_fs: float) -> dict:
    """Model only, hold: the row effect ``(q_2d - q_1d) / |q_1d|`` over every column of the tile the case comes
    from (row wires driven from its column 0), and over the selected columns in place."""
    gp, gn = case.g_tile
    kw = dict(r_wire_ohm=r, v_read_v=circ.v_read_v, dv_v=circ.dv_v, t_slot_ns=circ.t_slot_ns,
              adc_sides=circ.adc_sides.value, window_slots=top)
    t0 = time.perf_counter()
    q_2d = column_charge_2d(gp, gn, case.durations, r_row_ohm=circ.r_row_ohm, **kw)
    wall = time.perf_counter() - t0
    q_1d = column_charge(gp, gn, case.durations, **kw)
    effect = np.abs(_signed_rel(q_2d, q_1d))
    sel = effect[offset:offset + cols]
    log.info("row effect over the whole tile (%d x %d, model only, %.1f s): max %.2e", *gp.shape, wall, effect.max())
    return {"r_wire_ohm": r, "idle_rows": IdleRows.hold.value, "rows": gp.shape[0], "cols": gp.shape[1],
            "row_effect_max_abs": float(effect.max()), "row_effect_mean_abs": float(effect.mean()),
            "slice_row_effect_max_abs": float(sel.max()), "slice_row_effect_mean_abs": float(sel.mean()),
            "fs_change_max": float(np.abs(q_2d - q_1d).max() / q_fs), "model_s": wall}


def _probe_record(p: int, model: dict, spice: SpiceRun, rows: int) -> dict:
    q = float(spice.charge_fc[0])
    out = {"row": p, "rows_from_adc": rows - 1 - p, "q_spice_fc": q, "q_ideal_fc": float(model["ideal"][0]),
           "ir_drop_rel": float(_rel(q, model["ideal"][0])), "spice_s": spice.wall_s}
    for path in ("effective", "time_stepped"):
        out[f"rel_error_{path}"] = None if model[path] is None else float(_rel(model[path][0], q))
    return out


def _summary(cases: list) -> dict:
    """Worst relative error per convention and path, over resistances (and over probes); with row wires also the
    max and mean |row_effect| over the convention's columns and resistances."""
    out: dict = {}
    for c in cases:
        s = out.setdefault(c["idle_rows"], {})
        for p, v in c["max_rel_error"].items():
            s[p] = max(s.get(p, 0.0), v)
        for pr in c["row_probes"]:
            for p in c["paths"]:
                s[f"{p}_row_probes"] = max(s.get(f"{p}_row_probes", 0.0), pr[f"rel_error_{p}"])
    for idle, s in out.items():
        effect = [abs(row["row_effect"]) for c in cases if c["idle_rows"] == idle for row in c["columns"]
                  if "row_effect" in row]
        if effect:
            s["row_effect_max_abs"], s["row_effect_mean_abs"] = max(effect), float(np.mean(effect))
    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="validate")
def main(cfg) -> None:
    try:
        run: ValidateConfig = OmegaConf.to_object(cfg)  # every range check fires here, before any work
    except (ValueError, OmegaConfBaseException) as err:
        raise CompactHydraException(str(err)) from None
    log.info("resolved config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        run_validation(run, Path(HydraConfig.get().runtime.output_dir))
    except (BadInput, SpiceError, ValidationFailed) as err:
        raise CompactHydraException(str(err)) from None


if __name__ == "__main__":
    main()
