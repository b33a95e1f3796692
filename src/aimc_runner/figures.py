"""The figures of ``aimc-report``: the headline metric per tile preset, and along each scanned config leaf.

Each figure is drawn with matplotlib's object API (no pyplot state, no GUI backend; PNG through Agg) at a fixed dpi
and without a version stamp, so a rerun on the same runs gives the same bytes. A figure is made only where the data
supports it: two tile presets in a panel, or two values along the scanned leaf.
"""

from __future__ import annotations

import io
import math
from typing import Any

from .runs import (PRESET_ORDER, TRAIN_ORDER, Tables, bucket, headline, is_number, metric_title, rank, settings,
                   task_title, values)

DPI = 120
PRESETS_FIGURE = "fig_presets.png"
LINE_FIGURES = {  # file -> (config leaf on the x axis, axis label, log scale)
    "fig_hwa_sigma.png": ("train.noise_std", "HWA training noise σ (relative to max|W|)", False),
    "fig_r_wire.png": ("tile.circuit.r_wire_ohm", "wire resistance per segment (Ω)", True),
    "fig_drift.png": ("tile.t_inference_s", "time since programming (s)", True),
}
FIGURES = (PRESETS_FIGURE, *LINE_FIGURES)  # every file this module may write
MARKERS = {"fp": "o", "hwa": "s", "tile_aware": "^", "none": "D"}  # training mode -> marker in fig_presets
OTHER_MARKERS = "v<>pP*X"  # for modes not named above
MODE_OFFSET = 0.15  # x distance between the training modes' markers at one preset
DIGITAL = ("ideal", "fp")  # (tile, train) of the reference line in fig_presets: the digital model


def render_figures(tables: Tables) -> dict[str, bytes]:
    """PNG bytes of each figure the data supports (at least two points along its axis)."""
    out = {}
    if (png := _presets_figure(tables)) is not None:
        out[PRESETS_FIGURE] = png
    for name, (axis, xlabel, log) in LINE_FIGURES.items():
        if (png := _line_figure(tables, axis, xlabel, log)) is not None:
            out[name] = png
    return out


def _presets_figure(tables: Tables) -> bytes | None:
    """Markers with error bars: tile presets on x, one marker and offset per training mode, y scaled to the data
    (bars from 0 would hide 81 vs 90 %); a dashed line at fp on the ideal tile. A panel per task, model and
    varying fields."""
    panels = [(gs, fields) for groups, fields in tables.values()
              for gs in bucket(groups, lambda g: (g.model, *values(g, fields))).values()
              if len({g.tile for g in gs}) >= 2]
    if not panels:
        return None
    # one colour and marker per training mode across all panels
    every_mode = sorted({g.train for gs, _ in panels for g in gs}, key=lambda t: rank(t, TRAIN_ORDER))
    style = {mode: (f"C{i}", MARKERS.get(mode, OTHER_MARKERS[i % len(OTHER_MARKERS)]))
             for i, mode in enumerate(every_mode)}
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig, axes = _figure(len(panels))
        for ax, (gs, fields) in zip(axes, panels):
            col = headline(gs[0])
            tiles = sorted({g.tile for g in gs}, key=lambda t: rank(t, PRESET_ORDER))
            modes = sorted({g.train for g in gs}, key=lambda t: rank(t, TRAIN_ORDER))
            for i, mode in enumerate(modes):
                dx = MODE_OFFSET * (i - (len(modes) - 1) / 2)  # side by side around the preset's tick
                pts = [(tiles.index(g.tile) + dx, *g.stats[col]) for g in gs if g.train == mode]
                color, marker = style[mode]
                ax.errorbar([p[0] for p in pts], [100 * p[1] for p in pts], yerr=[100 * (p[2] or 0.0) for p in pts],
                            color=color, marker=marker, linestyle="none", capsize=3, label=mode)
            digital = [g for g in gs if (g.tile, g.train) == DIGITAL]
            if digital:
                ax.axhline(100 * digital[0].stats[col][0], color="0.4", linestyle="--", linewidth=1,
                           label=f"{DIGITAL[1]} on {DIGITAL[0]}", zorder=0)
            ax.set_xticks(range(len(tiles)), tiles, rotation=30, ha="right")
            ax.set_xlim(-0.5, len(tiles) - 0.5)
            ax.set_ylabel(f"{metric_title(*col)} ×100")
            ax.set_title(" · ".join([task_title(gs[0].task), gs[0].model, *settings(gs[0], fields)]), fontsize=9)
            ax.legend(fontsize=8)
        return _png(fig)


def _line_figure(tables: Tables, axis: str, xlabel: str, log: bool) -> bytes | None:
    """Metric vs one config leaf; a panel per task and model, a line per everything else."""
    panels = []
    for groups, fields in tables.values():
        if axis not in fields:
            continue
        others = [f for f in fields if f != axis]
        for gs in bucket(groups, lambda g: g.model).values():
            lines = [s for s in bucket(gs, lambda g: (g.tile, g.train, *values(g, others))).values()
                     if len({g.value(axis) for g in s if is_number(g.value(axis))}) >= 2]
            if lines:  # legends name the other fields only where they tell these lines apart
                panels.append((lines, [f for f in others if len({values(s[0], [f]) for s in lines}) > 1]))
    if not panels:
        return None
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig, axes = _figure(len(panels))
        for ax, (lines, others) in zip(axes, panels):
            col = headline(lines[0][0])
            for s in lines:
                pts = sorted((float(g.value(axis)), *g.stats[col]) for g in s if is_number(g.value(axis)))
                label = ", ".join([s[0].tile, s[0].train, *settings(s[0], others)])
                ax.errorbar([p[0] for p in pts], [100 * p[1] for p in pts], yerr=[100 * (p[2] or 0.0) for p in pts],
                            marker="o", capsize=2, label=label)
            if log and all(float(g.value(axis)) > 0 for s in lines for g in s if is_number(g.value(axis))):
                ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{metric_title(*col)} ×100")
            ax.set_title(f"{task_title(lines[0][0].task)} · {lines[0][0].model}", fontsize=9)
            ax.legend(fontsize=7)
        return _png(fig)


def _figure(n: int) -> tuple[Any, Any]:
    """A figure with n panels, up to three a row; matplotlib's object API (no pyplot state, no GUI backend)."""
    from matplotlib.figure import Figure

    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.8 * ncols, 3.6 * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # no version stamp: reruns are identical
    return buf.getvalue()
