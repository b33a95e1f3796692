"""``results.json`` folders → checked, grouped runs: what ``aimc-report`` tabulates and plots.

Runs are grouped by their recorded configuration less the seed, the execution-only settings and the data folder;
each group holds the task's GLUE metrics as mean ± std over seeds. Inputs are refused unless every one is readable
and consistent: mixed schema versions always, mixed (or uncommitted) code unless allowed, and runs of one group that
read different data files or share a seed. The small helpers at the end (ordering, titles, field values) are shared
by the tables and the figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import results
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
    by_version = bucket(runs, lambda r: r.record.get("schema_version"))
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
    by_code = bucket(runs, lambda r: code_version(r.record))
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


# ----------------------------------------------------------------------------------------------------------------
# Grouping


def group_runs(runs: list[Run]) -> list[Group]:
    """Groups of runs that differ only in the seed, each checked (distinct seeds, same data, every metric)."""
    buckets = bucket(runs, lambda r: json.dumps([[r.record[k] for k in ("task", "model", "tile", "train")],
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
    by_seed = bucket(runs, lambda r: r.record["seeds"].get("run"))
    for seed, rs in _sorted_items(by_seed):
        if len(rs) > 1:
            raise ReportError(f"{len(rs)} results of one configuration ({label}) with the same seed {seed}: "
                              f"{', '.join(r.name for r in rs)}; keep one (they would count as separate seeds)")


def _check_data(runs: list[Run], label: str) -> None:
    files = {r.name: (r.record.get("data") or {}).get("files") or {} for r in runs}
    bad = []
    for path in sorted(set().union(*files.values())):
        by_sha = bucket(runs, lambda r: files[r.name].get(path, "absent"))
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
    n_chips = tuple(sorted({chip_count(r.record) for r in runs}))
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


def chip_count(record: dict) -> int:
    """How many simulated chips (Monte-Carlo draws of the tile's noise) the run was evaluated on."""
    return len(record.get("metrics_per_draw") or record["seeds"].get("chips") or [None])


def varying_fields(groups: list[Group]) -> list[str]:
    """Config leaves that differ between groups of the same task, model, tile and training mode."""
    same_labels = bucket(groups, lambda g: (g.task, g.model, g.tile, g.train))
    leaves = sorted(set().union(*(g.config for g in groups)))
    return [leaf for leaf in leaves
            if any(len({json.dumps(g.value(leaf), default=str) for g in gs}) > 1 for gs in same_labels.values())]


def order(groups: list[Group], fields: list[str]) -> list[Group]:
    """Task order of tasks.TASKS, model, preset order, training order, then the varying fields by value."""
    return sorted(groups, key=lambda g: (rank(g.task, tuple(TASKS)), g.model, rank(g.tile, PRESET_ORDER),
                                         rank(g.train, TRAIN_ORDER), *(sortable(g.value(f)) for f in fields)))


def headline(group: Group) -> tuple[str, str]:
    """The (split, metric) plotted and compared: the main metric on the first eval split (MNLI: matched)."""
    main = group.runs[0].record.get("main_metric")
    cols = list(group.stats)
    return next((c for c in cols if c[1] == main), cols[0])


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


def bucket(items: Iterable, key: Callable) -> dict:
    """Items by key, keys in first-seen order."""
    out: dict = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def _sorted_items(d: dict) -> list:
    return sorted(d.items(), key=lambda kv: sortable(kv[0]))


def rank(value: str, known: tuple) -> tuple:
    return (known.index(value), "") if value in known else (len(known), value)


def sortable(v: Any) -> tuple:
    if v is None:
        return (0, 0.0, "")
    if is_number(v) or isinstance(v, bool):
        return (1, float(v), "")
    return (2, 0.0, str(v))


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt_value(v: Any) -> str:
    if v == ABSENT:
        return "(absent)"
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def values(g: Group, fields: list[str]) -> tuple[str, ...]:
    """The group's values of the fields, hashable."""
    return tuple(json.dumps(g.value(f), default=str) for f in fields)


def settings(g: Group, fields: list[str]) -> list[str]:
    """``"noise_std=0.05"`` for each field: the last part of its name and the group's value."""
    return [f"{f.rsplit('.', 1)[-1]}={fmt_value(g.value(f))}" for f in fields]


def metric_title(split: str, metric: str) -> str:
    suffix = SPLIT_TITLES.get(split, split)
    return METRIC_TITLES.get(metric, metric) + (f" ({suffix})" if suffix else "")


def task_title(task: str) -> str:
    return f"{TASKS[task].glue_dir} ({task})" if task in TASKS else task
