"""``aimc-report``: the table (Markdown, CSV, LaTeX) and figures of a set of runs, read from their ``results.json``.

Runs are grouped by their recorded configuration less the seed, the execution-only settings and the data folder;
each group gives the task's GLUE metrics ×100 as mean ± std over seeds. Per task, table.md and table.tex show the
main metric as training mode × tile preset first (the paper's comparison), then every configuration; table.csv is
long format; the figures are drawn by ``figures.py``. Nothing is written unless every input is readable and
consistent: mixed schema versions are always refused, mixed (or uncommitted) code unless ``--allow-mixed``, and runs
of one group that read different data files. The outputs are a function of the inputs only (no timestamps, no
absolute paths of the report's own making), so a rerun on the same runs is byte-for-byte equal.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import results
from .atomic import write_bytes_atomic
from .tasks import TASKS

PRESET_ORDER = ("ideal", "adc", "read_noise", "irdrop", "pcm_irdrop", "pcm_drift", "irdrop_float")
TRAIN_ORDER = ("fp", "hwa", "tile_aware", "none")
# Not what a run computes: how it executed, the seed (averaged over) and where the data lay (the data's identity is
# the sha256 of each file, checked within every group).
NOT_IN_KEY = (*results.EXECUTION_ONLY, "seed", "task.data_dir")
REQUIRED = ("task", "model", "tile", "train", "metrics", "metrics_std", "seeds", "config")
ABSENT = "<absent>"

METRIC_TITLES = {"accuracy": "accuracy", "f1": "F1", "matthews_correlation": "Matthews corr.", "pearson": "Pearson",
                 "spearman": "Spearman"}
SPLIT_TITLES = {"dev": "", "dev_matched": "m", "dev_mismatched": "mm"}

CONVENTIONS = (
    "Metrics ×100 (accuracy and F1 in %, correlations ×100), mean ± std. `std_over`: `seeds` = sample std "
    "(ddof=1) over seeds of each run's mean over chips; `chips` = one seed only, sample std over its chips; "
    "`none` = one seed and one chip, no spread."
)


class ReportError(Exception):
    """Inputs that cannot be reported as they are; the message says which and why."""


@dataclass(frozen=True)
class Run:
    name: str  # the run folder relative to its input folder, prefixed by that folder's name
    record: dict


@dataclass(frozen=True)
class Group:
    """Runs that differ only in their seed, and their summary."""

    task: str
    model: str
    tile: str
    train: str
    config: dict[str, Any]  # dotted config leaf -> value, less NOT_IN_KEY
    runs: tuple[Run, ...]
    stats: dict[tuple[str, str], tuple[float, float | None]]  # (split, metric) -> (mean, std or None)
    std_over: str
    n_chips: tuple[int, ...]

    def value(self, leaf: str) -> Any:
        return self.config.get(leaf, ABSENT)


Tables = dict[str, tuple[list[Group], list[str]]]  # task -> (its groups in table order, its varying config fields)


# ----------------------------------------------------------------------------------------------------------------
# Reading and checking


def load_runs(folders: Sequence[Path]) -> list[Run]:
    """Every ``results.json`` under the folders (each file once), in a fixed order."""
    found: dict[Path, str] = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ReportError(f"{folder}: no such folder")
        for path in sorted(folder.rglob(results.RESULTS)):
            rel = path.parent.relative_to(folder).as_posix()
            found.setdefault(path.resolve(), folder.resolve().name + ("" if rel == "." else f"/{rel}"))
    if not found:
        raise ReportError(f"no {results.RESULTS} under {', '.join(map(str, folders))}: nothing to report")
    return [Run(name, _read(path)) for path, name in sorted(found.items(), key=lambda kv: (kv[1], str(kv[0])))]


def _read(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ReportError(f"{path}: unreadable results file ({e})") from e
    if not isinstance(record, dict):
        raise ReportError(f"{path}: not a results record (a JSON {type(record).__name__}, not an object)")
    return record


def check_schema(runs: list[Run]) -> None:
    """One schema version, the one this report reads, and the keys it needs."""
    by_version = _bucket(runs, lambda r: r.record.get("schema_version"))
    if len(by_version) > 1:
        raise ReportError("results of different schema versions cannot be reported together: " + "; ".join(
            f"version {v}: {len(rs)} run(s), e.g. {rs[0].name}" for v, rs in _sorted_items(by_version)))
    (version,) = by_version
    if version != results.SCHEMA_VERSION:
        raise ReportError(f"the results have schema version {version}; this aimc-report reads version "
                          f"{results.SCHEMA_VERSION} (use the aimc-report of the code that wrote them)")
    for run in runs:
        missing = [k for k in REQUIRED if k not in run.record]
        if missing:
            raise ReportError(f"{run.name}/{results.RESULTS} lacks {', '.join(missing)}")


def code_version(record: dict) -> str:
    git = record.get("git") or {}
    state = " with uncommitted changes" if git.get("dirty") else ""
    package = (record.get("versions") or {}).get("aimc-runner", "?")
    return f"git {git.get('sha', 'unknown')}{state}, aimc-runner {package}"


def check_code(runs: list[Run], allow_mixed: bool) -> tuple[list[str], bool]:
    """The code versions as lines ``"<version>: n run(s)"``, and whether they are mixed (refused unless allowed)."""
    by_code = _bucket(runs, lambda r: code_version(r.record))
    dirty = any((r.record.get("git") or {}).get("dirty") for r in runs)
    mixed = len(by_code) > 1 or dirty
    lines = [f"{code}: {len(rs)} run(s)" + (f", e.g. {rs[0].name}" if mixed else "")
             for code, rs in _sorted_items(by_code)]
    if mixed and not allow_mixed:
        why = "different code versions" if len(by_code) > 1 else "a source tree with uncommitted changes"
        raise ReportError(f"the results come from {why}:\n  " + "\n  ".join(lines) + "\nRerun them from one "
                          "committed version, or pass --allow-mixed to report them together (the report states "
                          "the mix)")
    return lines, mixed


def group_runs(runs: list[Run]) -> list[Group]:
    """Groups of runs that differ only in the seed, each checked (distinct seeds, same data, every metric)."""
    buckets = _bucket(runs, lambda r: json.dumps([[r.record[k] for k in ("task", "model", "tile", "train")],
                                                   _key_config(r.record)], sort_keys=True, default=str))
    groups = []
    for members in buckets.values():
        label = "/".join(str(members[0].record[k]) for k in ("task", "model", "tile", "train"))
        _check_seeds(members, label)
        _check_data(members, label)
        groups.append(_summarise(members, label))
    return groups


def _key_config(record: dict) -> dict[str, Any]:
    return {k: v for k, v in _leaves(record["config"]).items() if k not in NOT_IN_KEY}


def _check_seeds(runs: list[Run], label: str) -> None:
    by_seed = _bucket(runs, lambda r: r.record["seeds"].get("run"))
    for seed, rs in _sorted_items(by_seed):
        if len(rs) > 1:
            raise ReportError(f"{len(rs)} results of one configuration ({label}) with the same seed {seed}: "
                              f"{', '.join(r.name for r in rs)}; keep one (they would count as separate seeds)")


def _check_data(runs: list[Run], label: str) -> None:
    files = {r.name: (r.record.get("data") or {}).get("files") or {} for r in runs}
    bad = []
    for path in sorted(set().union(*files.values())):
        by_sha = _bucket(runs, lambda r: files[r.name].get(path, "absent"))
        if len(by_sha) > 1:
            bad.append(f"{path}: " + "; ".join(f"{sha} in {', '.join(r.name for r in rs)}"
                                               for sha, rs in _sorted_items(by_sha)))
    if bad:
        raise ReportError(f"runs of one configuration ({label}) read different data files:\n  " + "\n  ".join(bad))


def metric_columns(task: str, record: dict) -> list[tuple[str, str]]:
    """(split, metric) pairs a task reports: every eval split × the task's GLUE metrics, main metric first."""
    if task in TASKS:
        spec = TASKS[task]
        return [(s, m) for s in spec.eval_splits for m in spec.metrics]
    main = record.get("main_metric")
    return [(s, m) for s in sorted(record["metrics"])
            for m in sorted(record["metrics"][s], key=lambda m: (m != main, m))]


def _summarise(runs: list[Run], label: str) -> Group:
    first = runs[0].record
    n_chips = tuple(sorted({_n_chips(r.record) for r in runs}))
    std_over = "seeds" if len(runs) > 1 else "chips" if n_chips[0] > 1 else "none"
    stats = {}
    for split, metric in metric_columns(first["task"], first):
        try:
            per_run = np.array([float(r.record["metrics"][split][metric]) for r in runs])
            chip_std = float(first["metrics_std"][split][metric])
        except (KeyError, TypeError, ValueError) as e:
            raise ReportError(f"runs of {label} ({', '.join(r.name for r in runs)}): no numeric {split} {metric} in "
                              f"their metrics / metrics_std") from e
        std = float(np.std(per_run, ddof=1)) if std_over == "seeds" else chip_std if std_over == "chips" else None
        stats[(split, metric)] = (float(np.mean(per_run)), std)
    return Group(*(str(first[k]) for k in ("task", "model", "tile", "train")), _key_config(first), tuple(runs),
                 stats, std_over, n_chips)


def _n_chips(record: dict) -> int:
    return len(record.get("metrics_per_draw") or record["seeds"].get("chips") or [None])


def varying_fields(groups: list[Group]) -> list[str]:
    """Config leaves that differ between groups of the same task, model, tile and training mode."""
    same_labels = _bucket(groups, lambda g: (g.task, g.model, g.tile, g.train))
    leaves = sorted(set().union(*(g.config for g in groups)))
    return [leaf for leaf in leaves
            if any(len({json.dumps(g.value(leaf), default=str) for g in gs}) > 1 for gs in same_labels.values())]


def order(groups: list[Group], fields: list[str]) -> list[Group]:
    """Task order of tasks.TASKS, model, preset order, training order, then the varying fields by value."""
    return sorted(groups, key=lambda g: (_rank(g.task, tuple(TASKS)), g.model, _rank(g.tile, PRESET_ORDER),
                                         _rank(g.train, TRAIN_ORDER), *(_sortable(g.value(f)) for f in fields)))


# ----------------------------------------------------------------------------------------------------------------
# Tables


def headline(group: Group) -> tuple[str, str]:
    """The (split, metric) plotted and compared: the main metric on the first eval split (MNLI: matched)."""
    main = group.runs[0].record.get("main_metric")
    cols = list(group.stats)
    return next((c for c in cols if c[1] == main), cols[0])


def task_table(groups: list[Group], fields: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (display strings) of one task's table."""
    cols = list(groups[0].stats)
    header = ["model", "tile", "train", *fields, "n_seeds", "n_chips", "std_over", *(_metric_title(*c) for c in cols)]
    rows = [[g.model, g.tile, g.train, *(_fmt_value(g.value(f)) for f in fields), str(len(g.runs)),
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
    what = _metric_title(*cols[0]) if len(cols) == 1 else (
        f"{METRIC_TITLES.get(metric, metric)} ({' / '.join(SPLIT_TITLES.get(s, s) for s, _ in cols)})")
    several_models = len({g.model for g in groups}) > 1
    buckets = _bucket(groups, lambda g: (g.model, *_values(g, fields))).values()
    out = []
    for gs in sorted(buckets, key=lambda gs: (gs[0].model, *(_sortable(gs[0].value(f)) for f in fields))):
        if len(gs) < 2:  # each (mode, preset) is one group here: the fields that tell groups apart are all fixed
            continue
        tiles = sorted({g.tile for g in gs}, key=lambda t: _rank(t, PRESET_ORDER))
        modes = sorted({g.train for g in gs}, key=lambda t: _rank(t, TRAIN_ORDER))
        cells = {(g.train, g.tile): " / ".join(_fmt_stat(*g.stats[c]) for c in cols) for g in gs}
        where = ([gs[0].model] if several_models else []) + _settings(gs[0], fields)
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
        out += ["", f"## {_task_title(task)}"]
        for pivot in pivots(groups, fields):
            out += ["", f"{pivot.title}:", "", _md_row(pivot.header), _md_row(["---"] * len(pivot.header))]
            out += [_md_row(r) for r in pivot.rows]
        header, rows = task_table(groups, fields)
        out += ["", _md_row(header), _md_row(["---"] * len(header))]
        out += [_md_row(r) for r in rows]
        out += _recovery(groups, fields)
    return "\n".join(out) + "\n"


def _recovery(groups: list[Group], fields: list[str]) -> list[str]:
    """Per preset (and varying fields), hwa − fp and tile_aware − fp of the headline metric, in points."""
    split, metric = headline(groups[0])
    several_models = len({g.model for g in groups}) > 1
    lines = []
    for gs in _bucket(groups, lambda g: (g.model, g.tile, *_values(g, fields))).values():
        means = {g.train: g.stats[(split, metric)][0] for g in gs}
        diffs = [f"{mode} − fp = {100 * (means[mode] - means['fp']):+.2f}" for mode in ("hwa", "tile_aware")
                 if mode in means and "fp" in means]
        if diffs:
            g = gs[0]
            # name only the fields that vary under this preset (the others are the preset's own values)
            where = ([g.model] if several_models else []) + [g.tile] + _settings(g, varying_fields(
                [x for x in groups if (x.model, x.tile) == (g.model, g.tile)]))
            lines.append(f"- {', '.join(where)}: {'; '.join(diffs)}")
    if not lines:
        return []
    return ["", f"Change from fp, points of {_metric_title(split, metric)} (difference of the means):", "", *lines]


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
                w.writerow([g.task, g.model, g.tile, g.train, *(_fmt_value(g.value(f)) for f in fields),
                            len(g.runs), _fmt_chips(g.n_chips), g.std_over, split, metric, f"{100 * mean:.4f}",
                            "" if std is None else f"{100 * std:.4f}"])
    return buf.getvalue()


def render_latex(tables: Tables) -> str:
    """Per task, a booktabs table per pivot, then the long table."""
    out = ["% aimc-report: " + CONVENTIONS.replace("`", "").replace("×", "x").replace("±", "+/-")]
    for task, (groups, fields) in tables.items():
        title = _tex(_task_title(task))
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
           f"- seeds: {', '.join(map(str, sorted({r['seeds'].get('run') for r in recs}, key=_sortable)))}",
           f"- chips per run: {_tally(_n_chips(r) for r in recs)}",
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
        for r in sorted(g.runs, key=lambda r: _sortable(r.record["seeds"].get("run"))):
            t = r.record.get("training") or {}
            out.append(f"| {r.name} | {r.record['seeds'].get('run')} | {_n_chips(r.record)} | {t.get('key', '—')} | "
                       f"{t.get('reused', '—')} | {float((r.record.get('wall_s') or {}).get('total') or 0.0):.1f} |")
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
    for task, gs in _bucket(order(groups, []), lambda g: g.task).items():
        if len({tuple(g.stats) for g in gs}) > 1:
            kinds = _bucket(gs, lambda g: tuple(g.stats)).values()
            raise ReportError(f"runs of task {task} report different metrics: "
                              + "; ".join(f"{k[0].runs[0].name}: {list(k[0].stats)}" for k in kinds))
        fields = varying_fields(gs)
        tables[task] = (order(gs, fields), fields)
    groups = [g for gs, _ in tables.values() for g in gs]
    from .figures import render_figures  # here, not at the top: figures builds on this module's groups and titles

    texts = {"table.md": render_markdown(tables, len(runs), code_lines, mixed), "table.csv": render_csv(tables),
             "table.tex": render_latex(tables), "sources.md": render_sources(runs, groups, code_lines, mixed)}
    return {**{k: v.encode("utf-8") for k, v in texts.items()}, **render_figures(tables)}


def write(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write each file atomically; remove this report's figures that the data no longer supports."""
    from .figures import FIGURES

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


def _leaves(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = json.dumps(v) if isinstance(v, list) else v  # lists compare and hash as text
    return out


def _bucket(items: Iterable, key: Callable) -> dict:
    """Items by key, keys in first-seen order."""
    out: dict = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def _sorted_items(d: dict) -> list:
    return sorted(d.items(), key=lambda kv: _sortable(kv[0]))


def _counts(values: Iterable) -> list[str]:
    """``"value (count)"`` per distinct value, in value order."""
    return [f"{v} ({n})" for v, n in sorted(Counter(values).items(), key=lambda kv: _sortable(kv[0]))]


def _tally(values: Iterable) -> str:
    return ", ".join(_counts(values))


def _rank(value: str, known: tuple) -> tuple:
    return (known.index(value), "") if value in known else (len(known), value)


def _sortable(v: Any) -> tuple:
    if v is None:
        return (0, 0.0, "")
    if _is_number(v) or isinstance(v, bool):
        return (1, float(v), "")
    return (2, 0.0, str(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt_value(v: Any) -> str:
    if v == ABSENT:
        return "(absent)"
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _values(g: Group, fields: list[str]) -> tuple[str, ...]:
    """The group's values of the fields, hashable."""
    return tuple(json.dumps(g.value(f), default=str) for f in fields)


def _settings(g: Group, fields: list[str]) -> list[str]:
    """``"noise_std=0.05"`` for each field: the last part of its name and the group's value."""
    return [f"{f.rsplit('.', 1)[-1]}={_fmt_value(g.value(f))}" for f in fields]


def _fmt_stat(mean: float, std: float | None) -> str:
    return f"{100 * mean:.2f}" if std is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


def _fmt_chips(n_chips: tuple[int, ...]) -> str:
    return ";".join(map(str, n_chips))


def _metric_title(split: str, metric: str) -> str:
    suffix = SPLIT_TITLES.get(split, split)
    return METRIC_TITLES.get(metric, metric) + (f" ({suffix})" if suffix else "")


def _task_title(task: str) -> str:
    return f"{TASKS[task].glue_dir} ({task})" if task in TASKS else task


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
