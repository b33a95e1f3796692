"""``aimc-report``: the table (Markdown, CSV, LaTeX) and figures of a set of runs, read from their ``results.json``.

``runs.py`` reads, checks and groups the runs; here each group gives the task's GLUE metrics ×100 as mean ± std over
seeds. Per task, table.md and table.tex show the main metric as training mode × tile preset first (the paper's
comparison), then every configuration; table.csv is long format; sources.md says which runs the numbers come from;
the figures are drawn by ``figures.py``. Nothing is written unless every input is readable and consistent (see
``runs.py``). The outputs are a function of the inputs only (no timestamps, no absolute paths of the report's own
making), so a rerun on the same runs is byte-for-byte equal.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from . import results
from .atomic import write_bytes_atomic
from .figures import FIGURES, render_figures
from .runs import (METRIC_TITLES, PRESET_ORDER, SPLIT_TITLES, TRAIN_ORDER, Group, ReportError, Run, Tables, bucket,
                   check_code, check_schema, chip_count, fmt_value, group_runs, headline, load_runs, metric_title,
                   order, rank, settings, sortable, task_title, values, varying_fields)

CONVENTIONS = (
    "Metrics ×100 (accuracy and F1 in %, correlations ×100), mean ± std. `std_over`: `seeds` = sample std "
    "(ddof=1) over seeds of each run's mean over chips; `chips` = one seed only, sample std over its chips; "
    "`none` = one seed and one chip, no spread."
)


# ----------------------------------------------------------------------------------------------------------------
# Tables


def task_table(groups: list[Group], fields: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (display strings) of one task's table."""
    cols = list(groups[0].stats)
    header = ["model", "tile", "train", *fields, "n_seeds", "n_chips", "std_over", *(metric_title(*c) for c in cols)]
    rows = [[g.model, g.tile, g.train, *(fmt_value(g.value(f)) for f in fields), str(len(g.runs)),
             _fmt_chips(g.n_chips), g.std_over, *(_fmt_stat(*g.stats[c]) for c in cols)] for g in groups]
    return header, rows


@dataclass(frozen=True)
class Pivot:
    """One task's main metric as training mode (rows) × tile preset (columns), at one model and varying fields."""

    title: str  # "accuracy by training mode (rows) and tile preset (columns)[, <model>, <field=value>...]"
    header: list[str]
    rows: list[list[str]]


def pivots(groups: list[Group], fields: list[str]) -> list[Pivot]:
    """The comparison the paper reads: per model and combination of the varying fields, the main metric of each
    training mode under each tile preset, mean ± std as in the long table ("—" where not run; MNLI: "m / mm").

    Only groups that agree on every varying field share a pivot; a pivot of one configuration is left out.
    """
    metric = headline(groups[0])[1]
    cols = [c for c in groups[0].stats if c[1] == metric]  # the main metric on every eval split (MNLI: m, mm)
    what = metric_title(*cols[0]) if len(cols) == 1 else (
        f"{METRIC_TITLES.get(metric, metric)} ({' / '.join(SPLIT_TITLES.get(s, s) for s, _ in cols)})")
    several_models = len({g.model for g in groups}) > 1
    buckets = bucket(groups, lambda g: (g.model, *values(g, fields))).values()
    out = []
    for gs in sorted(buckets, key=lambda gs: (gs[0].model, *(sortable(gs[0].value(f)) for f in fields))):
        if len(gs) < 2:  # each (mode, preset) is one group here: the fields that tell groups apart are all fixed
            continue
        tiles = sorted({g.tile for g in gs}, key=lambda t: rank(t, PRESET_ORDER))
        modes = sorted({g.train for g in gs}, key=lambda t: rank(t, TRAIN_ORDER))
        cells = {(g.train, g.tile): " / ".join(_fmt_stat(*g.stats[c]) for c in cols) for g in gs}
        where = ([gs[0].model] if several_models else []) + settings(gs[0], fields)
        out.append(Pivot(", ".join([f"{what} by training mode (rows) and tile preset (columns)", *where]),
                         ["train", *tiles], [[m, *(cells.get((m, t), "—") for t in tiles)] for m in modes]))
    return out


def render_markdown(tables: Tables, n_runs: int, code_lines: list[str], mixed: bool) -> str:
    n_groups = sum(len(groups) for groups, _ in tables.values())
    out = ["# Results", "", CONVENTIONS, "", f"{n_runs} runs in {n_groups} configurations; their provenance is in "
           "sources.md."]
    if mixed:
        out += ["", "**Mixed code versions** (reported with `--allow-mixed`):", "", *(f"- {c}" for c in code_lines)]
    else:
        out += [f"Code: {code_lines[0].rsplit(':', 1)[0]}."]
    for task, (groups, fields) in tables.items():
        out += ["", f"## {task_title(task)}"]
        for pivot in pivots(groups, fields):
            out += ["", f"{pivot.title}:", "", _md_row(pivot.header), _md_row(["---"] * len(pivot.header))]
            out += [_md_row(r) for r in pivot.rows]
        header, rows = task_table(groups, fields)
        out += ["", _md_row(header), _md_row(["---"] * len(header))]
        out += [_md_row(r) for r in rows]
        out += _recovery(groups, fields)
    return "\n".join(out) + "\n"


# A share of a loss is stated only for losses of at least 2 points (metric x100): a share of a smaller one is noise.
MEANINGFUL_LOSS = 0.02


def _share(change: float, loss: float) -> str:
    """A training mode's change from fp as a share of fp's loss: "recovers 45% of" or "adds 33% to"."""
    return f"recovers {change / loss:.0%} of" if change >= 0 else f"adds {-change / loss:.0%} to"


def _recovery(groups: list[Group], fields: list[str]) -> list[str]:
    """Per preset (and varying fields), hwa − fp and tile_aware − fp of the headline metric, in points."""
    split, metric = headline(groups[0])
    several_models = len({g.model for g in groups}) > 1
    lines = []
    # The digital reference of each model: fp on the ideal tile (the loss a preset causes is measured from it).
    digital = {g.model: g.stats[(split, metric)][0] for g in groups if (g.tile, g.train) == ("ideal", "fp")}
    for gs in bucket(groups, lambda g: (g.model, g.tile, *values(g, fields))).values():
        means = {g.train: g.stats[(split, metric)][0] for g in gs}
        loss = digital.get(gs[0].model, float("nan")) - means.get("fp", float("nan"))
        diffs = [f"{mode} − fp = {100 * (means[mode] - means['fp']):+.2f}"
                 + (f" ({_share(means[mode] - means['fp'], loss)} the {100 * loss:.2f}-point loss of fp vs ideal)"
                    if loss >= MEANINGFUL_LOSS and gs[0].tile != "ideal" else "")
                 for mode in ("hwa", "tile_aware") if mode in means and "fp" in means]
        if diffs:
            g = gs[0]
            # name only the fields that vary under this preset (the others are the preset's own values)
            where = ([g.model] if several_models else []) + [g.tile] + settings(g, varying_fields(
                [x for x in groups if (x.model, x.tile) == (g.model, g.tile)]))
            lines.append(f"- {', '.join(where)}: {'; '.join(diffs)}")
    if not lines:
        return []
    return ["", f"Change from fp, points of {metric_title(split, metric)} (difference of the means):", "", *lines]


def render_csv(tables: Tables) -> str:
    """Long format: one row per configuration and metric, values ×100; the varying fields of every task."""
    fields = sorted(set().union(*(fields for _, fields in tables.values())))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "model", "tile", "train", *fields, "n_seeds", "n_chips", "std_over", "split", "metric",
                "mean_x100", "std_x100"])
    for groups, _ in tables.values():
        for g in groups:
            for (split, metric), (mean, std) in g.stats.items():
                w.writerow([g.task, g.model, g.tile, g.train, *(fmt_value(g.value(f)) for f in fields),
                            len(g.runs), _fmt_chips(g.n_chips), g.std_over, split, metric, f"{100 * mean:.4f}",
                            "" if std is None else f"{100 * std:.4f}"])
    return buf.getvalue()


def render_latex(tables: Tables) -> str:
    """Per task, a booktabs table per pivot, then the long table."""
    out = ["% aimc-report: " + CONVENTIONS.replace("`", "").replace("×", "x").replace("±", "+/-")]
    for task, (groups, fields) in tables.items():
        title = _tex(task_title(task))
        task_pivots = pivots(groups, fields)
        for i, pivot in enumerate(task_pivots, 1):
            label = f"tab:{task}-pivot" + (str(i) if len(task_pivots) > 1 else "")
            out += _tex_table(rf"{title}: {_tex(pivot.title)}; $\times 100$, mean $\pm$ std (std\_over in "
                              rf"Table~\ref{{tab:{task}}}).", label, "l" + "r" * (len(pivot.header) - 1),
                              pivot.header, pivot.rows)
        header, rows = task_table(groups, fields)
        out += _tex_table(rf"{title}: GLUE metrics $\times 100$, mean $\pm$ std over std\_over.", f"tab:{task}",
                          "l" * (3 + len(fields)) + "rrl" + "r" * (len(header) - 6 - len(fields)), header, rows)
    return "\n".join(out) + "\n"


def _tex_table(caption: str, label: str, columns: str, header: list[str], rows: list[list[str]]) -> list[str]:
    return ["", r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
            rf"\begin{{tabular}}{{{columns}}}", r"\toprule", _tex_row(header), r"\midrule",
            *(_tex_row(r) for r in rows), r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def render_sources(runs: list[Run], groups: list[Group], code_lines: list[str], mixed: bool) -> str:
    """Which runs the numbers come from: counts, seeds, code, packages, machines, data checksums, every run."""
    recs = [r.record for r in runs]
    total = sum(float((r.get("wall_s") or {}).get("total") or 0.0) for r in recs)
    folders = ", ".join(sorted({r.name.split("/")[0] for r in runs}))
    out = ["# Sources of table.md", "", f"{len(runs)} runs in {len(groups)} configurations, from: {folders}.",
           f"Schema version {results.SCHEMA_VERSION}.", "",
           f"- tasks: {_tally(r['task'] for r in recs)}", f"- models: {_tally(r['model'] for r in recs)}",
           f"- tile presets: {_tally(r['tile'] for r in recs)}", f"- training: {_tally(r['train'] for r in recs)}",
           f"- seeds: {', '.join(map(str, sorted({r['seeds'].get('run') for r in recs}, key=sortable)))}",
           f"- chips per run: {_tally(chip_count(r) for r in recs)}",
           f"- fine-tunes reused from the cache: {sum(bool((r.get('training') or {}).get('reused')) for r in recs)} "
           f"of {len(recs)} runs",
           f"- wall time summed over runs: {total:.1f} s" + (f" ({total / 3600:.2f} h)" if total >= 3600 else ""), "",
           "## Code" + (" (mixed: reported together with --allow-mixed)" if mixed else ""), "",
           *(f"- {line}" for line in code_lines), "",
           "## Packages", "", "| package | version (runs) |", "| --- | --- |"]
    packages = sorted(set().union(*((r.get("versions") or {}) for r in recs)))
    out += [f"| {p} | {_tally((r.get('versions') or {}).get(p, 'absent') for r in recs)} |" for p in packages]
    out += ["", "## Machines", "", *(f"- {m}" for m in _counts(_machine(r) for r in recs))]
    out += ["", "## Data", "", *(f"- source {s}" for s in _counts((r.get("data") or {}).get("source") for r in recs)),
            "", "| file | sha256 | runs |", "| --- | --- | --- |"]
    files = Counter((p, sha) for r in recs for p, sha in ((r.get("data") or {}).get("files") or {}).items())
    out += [f"| {p} | {sha} | {n} |" for (p, sha), n in sorted(files.items())]
    out += ["", "## Runs", "", "| run | seed | chips | training key | reused | wall s |", "| --- " * 6 + "|"]
    for g in groups:
        for r in sorted(g.runs, key=lambda r: sortable(r.record["seeds"].get("run"))):
            t = r.record.get("training") or {}
            out.append(f"| {r.name} | {r.record['seeds'].get('run')} | {chip_count(r.record)} | {t.get('key', '—')} "
                       f"| {t.get('reused', '—')} | {float((r.record.get('wall_s') or {}).get('total') or 0.0):.1f} |")
    return "\n".join(out) + "\n"


def _machine(record: dict) -> str:
    m = record.get("machine") or {}
    return f"{m.get('hostname', '?')} ({m.get('platform', '?')}; {m.get('cpus', '?')} CPUs)"


# ----------------------------------------------------------------------------------------------------------------
# Entry point


def build(folders: Sequence[Path], allow_mixed: bool = False) -> dict[str, bytes]:
    """Every output file name -> its content, computed in memory; raises ReportError before anything is written."""
    runs = load_runs(folders)
    check_schema(runs)
    code_lines, mixed = check_code(runs, allow_mixed)
    groups = group_runs(runs)
    tables: Tables = {}
    for task, gs in bucket(order(groups, []), lambda g: g.task).items():
        if len({tuple(g.stats) for g in gs}) > 1:
            kinds = bucket(gs, lambda g: tuple(g.stats)).values()
            raise ReportError(f"runs of task {task} report different metrics: "
                              + "; ".join(f"{k[0].runs[0].name}: {list(k[0].stats)}" for k in kinds))
        fields = varying_fields(gs)
        tables[task] = (order(gs, fields), fields)
    groups = [g for gs, _ in tables.values() for g in gs]
    texts = {"table.md": render_markdown(tables, len(runs), code_lines, mixed), "table.csv": render_csv(tables),
             "table.tex": render_latex(tables), "sources.md": render_sources(runs, groups, code_lines, mixed)}
    return {**{k: v.encode("utf-8") for k, v in texts.items()}, **render_figures(tables)}


def write(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write each file atomically; remove this report's figures that the data no longer supports."""
    for name, data in files.items():
        write_bytes_atomic(out_dir / name, data)
    for name in FIGURES:
        if name not in files:
            (out_dir / name).unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``aimc-report FOLDER [FOLDER ...] [--out results] [--allow-mixed]``; exit status 2 on unusable input."""
    parser = argparse.ArgumentParser(
        prog="aimc-report", description="Table (Markdown, CSV, LaTeX) and figures of every results.json under the "
        "folders: mean ± std over seeds of each configuration.")
    parser.add_argument("folders", nargs="+", type=Path, metavar="FOLDER", help="searched recursively for results.json")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: results)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="report results of different code versions together (the report states the mix)")
    args = parser.parse_args(argv)
    try:
        if args.out.exists() and not args.out.is_dir():
            raise ReportError(f"--out {args.out} is a file, not a folder")
        files = build(args.folders, args.allow_mixed)
        write(args.out, files)
    except (ReportError, OSError) as e:
        print(f"aimc-report: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ReportError) else 1
    print(f"aimc-report: wrote {', '.join(files)} to {args.out}")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# Small helpers


def _counts(items: Iterable) -> list[str]:
    """``"value (count)"`` per distinct value, in value order."""
    return [f"{v} ({n})" for v, n in sorted(Counter(items).items(), key=lambda kv: sortable(kv[0]))]


def _tally(items: Iterable) -> str:
    return ", ".join(_counts(items))


def _fmt_stat(mean: float, std: float | None) -> str:
    return f"{100 * mean:.2f}" if std is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


def _fmt_chips(n_chips: tuple[int, ...]) -> str:
    return ";".join(map(str, n_chips))


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "--"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(c, c) for c in s)


def _tex_row(cells: list[str]) -> str:
    return " & ".join(_tex(c).replace(" ± ", r" $\pm$ ") for c in cells) + r" \\"


if __name__ == "__main__":
    sys.exit(main())
