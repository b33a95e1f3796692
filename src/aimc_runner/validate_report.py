"""The printed table and the figure of an ``aimc-validate`` record (see :mod:`aimc_runner.validate`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic

_PATHS = ("effective", "time_stepped")


def _e(x) -> str:
    return "n/a" if x is None else f"{x:.1e}"


def _g(x, scale: float = 1.0) -> str:
    return "n/a" if x is None else f"{scale * x:.3g}"


def table(rec: dict, print_columns: int) -> str:
    """Per case a per-column table (at most ``print_columns`` rows), then one summary line per case."""
    info = rec["case"]
    what = (f"layer {info['layer']} of {info['model']} ({info['layer_shape'][0]}x{info['layer_shape'][1]}), token "
            f"{info['token']} of {info['tokens']} from {info['sentences']} {info['task']} {info['split']} sentences, "
            f"r_in {info['r_in']:.4g}" if rec["source"] == "layer" else rec["source"])
    lines = [f"aimc-validate: {what}",
             f"{rec['rows']} rows ({rec['n_in']} with weights) x {rec['cols']} columns, pulses up to "
             f"{rec['max_pulse_slots']} of {rec['window_slots']} slots, q_fs = {rec['q_full_scale_fc']:.6g} fC; "
             f"{rec['ngspice']}, {rec['workers']} workers; tolerance {rec['tolerance']:g} relative"]
    coupled = rec.get("coupled", False)
    if coupled:
        lines += [
            f"row wires: r_row {rec['r_row_ohm']:g} ohm per cell. The columns couple: each case is one netlist of the "
            f"slice as a tile of {rec['cols']} columns",
            "(its row wires driven at the slice's west edge, the tile's other columns not on them); spice_s: that "
            "run's wall time / columns; row probes skipped.",
            "q_no_rows: the column-ladder model without row wires; row_eff = (q_spice - q_no_rows) / |q_no_rows|."]
    lines.append("")
    head = (f"{'col':>4} {'adc':>3} {'q_ideal':>13} {'q_spice':>13} {'q_effective':>13} {'q_time_stepped':>14} "
            f"{'rel_eff':>8} {'rel_ts':>8} {'fs_ts':>8} {'spice_s':>7} {'x_eff':>7} {'x_ts':>7}")
    if coupled:
        head += f" {'q_no_rows':>13} {'row_eff':>9}"
    for c in rec["cases"]:
        note = "" if "effective" in c["paths"] else "; effective: not exact for float, not run"
        lines.append(f"{c['idle_rows']}, r_wire {c['r_wire_ohm']:g} ohm (charges in fC; IR-drop up to "
                     f"{c['ir_drop_fs']:.2e} of full scale{note})")
        lines.append(head)
        for row in c["columns"][:print_columns]:
            q_eff = "n/a" if row["q_effective_fc"] is None else f"{row['q_effective_fc']:.6f}"
            line = (
                f"{row['column']:>4} {row['adc'][0].upper():>3} {row['q_ideal_fc']:>13.6f} {row['q_spice_fc']:>13.6f} "
                f"{q_eff:>13} {row['q_time_stepped_fc']:>14.6f} "
                f"{_e(row['rel_error_effective']):>8} {_e(row['rel_error_time_stepped']):>8} "
                f"{_e(row['fs_error_time_stepped']):>8} {row['spice_s']:>7.2f} "
                f"{_g(row['speedup_effective']):>7} "
                f"{row['speedup_time_stepped']:>7.3g}")
            if coupled:
                line += f" {row['q_no_rows_fc']:>13.6f} {row['row_effect']:>+9.2e}"
            lines.append(line)
        if len(c["columns"]) > print_columns:
            lines.append(f"     ... {len(c['columns']) - print_columns} more columns in validate.json")
        lines.append("")
    lines.append("summary (max over columns; probes: single rows at g_max from the far end to the ADC)")
    lines.append(f"{'idle':>5} {'r_ohm':>6} {'IRdrop_fs':>9} {'rel_eff':>8} {'rel_ts':>8} {'fs_ts':>8} {'probe_ts':>8} "
                 f"{'spice_s':>8} {'eff_ms':>8} {'ts_ms':>8} {'x_eff':>8} {'x_ts':>8}"
                 + (f" {'|row_eff|max':>12} {'mean':>8}" if coupled else "") + "  pass")
    for c in rec["cases"]:
        t, s, m = c["timing_s"], c["speedup"], c["max_rel_error"]
        probe = max((p["rel_error_time_stepped"] for p in c["row_probes"]), default=None)
        effect = (f" {c['row_effect']['max_abs']:>12.2e} {c['row_effect']['mean_abs']:>8.2e}" if coupled else "")
        lines.append(
            f"{c['idle_rows']:>5} {c['r_wire_ohm']:>6g} {c['ir_drop_fs']:>9.1e} {_e(m.get('effective')):>8} "
            f"{_e(m['time_stepped']):>8} {_e(c['max_fs_error']['time_stepped']):>8} {_e(probe):>8} "
            f"{t['spice_total']:>8.1f} {_g(t.get('effective'), 1e3):>8} {_g(t['time_stepped'], 1e3):>8} "
            f"{_g(s.get('effective')):>8} "
            f"{s['time_stepped']:>8.3g}{effect}  {'PASS' if c['pass'] else 'FAIL'}")
    for f in rec.get("full_width", []):
        lines += [f"row effect over the layer's whole first tile, {f['rows']} x {f['cols']} (model only: hold, "
                  f"effective, r_wire {f['r_wire_ohm']:g} ohm, row wires driven from its column 0):",
                  f"  |row_eff| max {f['row_effect_max_abs']:.2e} mean {f['row_effect_mean_abs']:.2e}; on the "
                  f"selected columns in place max {f['slice_row_effect_max_abs']:.2e} mean "
                  f"{f['slice_row_effect_mean_abs']:.2e}; max |q_2d - q_1d| / q_fs {f['fs_change_max']:.2e}"]
    w = rec["wall_s"]
    lines.append(f"ngspice {w['spice']:.1f} s wall on {rec['workers']} workers (estimate {w['estimate_spice']:.0f} s); "
                 f"total {w['total']:.1f} s; speed-ups: summed ngspice time / one model call on all columns")
    lines.append("PASS" if rec["pass"] else "FAIL")
    return "\n".join(lines)


def plot(rec: dict, path: Path) -> None:
    """Left: model vs SPICE charge per column (y = x). Right: row probes, error and IR-drop vs row position; or,
    with row wires, each column's row effect."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    probes = any(c["row_probes"] for c in rec["cases"])
    coupled = rec.get("coupled", False)
    right = probes or coupled
    fig, axes = plt.subplots(1, 2 if right else 1, figsize=(13 if right else 5.5, 4.8), squeeze=False)
    ax = axes[0, 0]
    lo, hi = np.inf, -np.inf
    for k, c in enumerate(rec["cases"]):
        label = f"{c['idle_rows']} {c['r_wire_ohm']:g} Ω"
        qs = np.array([r["q_spice_fc"] for r in c["columns"]])
        for p, marker in zip(_PATHS, ("x", "o")):
            if p in c["paths"]:
                qm = np.array([r[f"q_{p}_fc"] for r in c["columns"]])
                ax.scatter(qs, qm, marker=marker, s=22, color=f"C{k}", facecolors="none" if marker == "o" else None,
                           label=f"{p}, {label}")
        lo, hi = min(lo, qs.min()), max(hi, qs.max())
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.7, label="y = x")
    ax.set_xlabel("SPICE charge (fC)")
    ax.set_ylabel("model charge (fC)")
    what = rec["case"]["layer"].split(".", 1)[-1] if rec["source"] == "layer" else rec["source"]
    ax.set_title(f"{what}: {rec['rows']} rows x {rec['cols']} columns", fontsize=10)
    ax.legend(fontsize=7)
    if probes:
        ax = axes[0, 1]
        for k, c in enumerate(rec["cases"]):
            x = [p["row"] for p in c["row_probes"]]
            label = f"{c['idle_rows']} {c['r_wire_ohm']:g} Ω"
            for p, style in zip(_PATHS, ("--", "-")):
                if p in c["paths"]:
                    y = [max(pr[f"rel_error_{p}"], 1e-17) for pr in c["row_probes"]]
                    ax.semilogy(x, y, style, marker=".", color=f"C{k}", label=f"|error| {p}, {label}")
            ax.semilogy(x, [max(pr["ir_drop_rel"], 1e-17) for pr in c["row_probes"]], ":", marker="^",
                        color=f"C{k}", label=f"IR-drop, {label}")
        ax.axhline(rec["tolerance"], color="k", lw=0.7, label="tolerance")
        ax.set_xlabel("driven row (0 = farthest from the ADC)")
        ax.set_ylabel("|q_model - q_spice| / q_spice,  |q_spice - q_ideal| / q_ideal")
        ax.set_title("row probes: one row on, every cell at g_max", fontsize=10)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if coupled:
        ax = axes[0, 1]
        for k, c in enumerate(rec["cases"]):
            ax.plot([r["column"] for r in c["columns"]], [r["row_effect"] for r in c["columns"]], marker="o",
                    color=f"C{k}", label=f"{c['idle_rows']} {c['r_wire_ohm']:g} Ω")
        ax.axhline(0.0, color="k", lw=0.7)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("column")
        ax.set_ylabel("(q_spice - q_no_rows) / |q_no_rows|")
        ax.set_title(f"row wires, r_row {rec['r_row_ohm']:g} Ω (slice as a {rec['cols']}-column tile)", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
