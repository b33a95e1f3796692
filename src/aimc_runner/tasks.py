"""The nine GLUE tasks: one table of facts, and loaders that give every task the same columns.

Data come from a local folder in the standard GLUE layout (``task.data_dir``, else ``$GLUE_DIR``), e.g.::

    GLUE_DIR/SST-2/train.tsv   GLUE_DIR/SST-2/dev.tsv
    GLUE_DIR/MNLI/train.tsv    GLUE_DIR/MNLI/dev_matched.tsv   GLUE_DIR/MNLI/dev_mismatched.tsv

and, only when no such folder holds the task, from the Hugging Face hub dataset ``nyu-mll/glue``.
Whatever the source, a loaded split has the columns ``text_a`` (str), ``text_b`` (str, pair tasks only) and
``label`` (int64 class id in the hub's label order; float32 similarity score for STS-B).

The GLUE TSVs are read with quoting off (fields hold literal ``"``) and with no missing-value detection (a
sentence that is literally ``NA`` or ``null`` is text); each file's rows are counted and checked against its
lines, so a reader quirk can never drop or merge a row silently.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
import numpy as np

from . import hub
from .config import TaskConfig

HUB_DATASET = "nyu-mll/glue"

# max_train_samples draws its subset with this seed, not the run seed, so that every run (and every seed of a
# sweep) that asks for n training examples trains on the same n examples.
SUBSAMPLE_SEED = 0


class DataNotFoundError(FileNotFoundError):
    """The task's files are neither in the local GLUE folder nor reachable on the hub."""


@dataclass(frozen=True)
class TaskSpec:
    """Facts about one GLUE task.

    Attributes
    ----------
    name : str
        Short name, as in ``TaskName`` (``"sst2"``).
    glue_dir : str
        Folder of the task in the GLUE layout (``"SST-2"``).
    hf_config : str
        Config of the hub dataset ``nyu-mll/glue``.
    text_keys : tuple
        Hub column names of the first and second text; the second is None for single-sentence tasks.
    num_labels : int
        Number of classes; 1 for the STS-B regression.
    label_names : tuple
        Class names in the hub's order (label id = index); empty for STS-B.
    eval_splits : tuple
        Local names of the evaluation splits, also their file stems (``dev`` -> ``dev.tsv``).
    metrics : tuple
        Metric names ``metrics.compute`` returns for this task.
    main_metric : str
        The headline metric (GLUE convention; MRPC and QQP report accuracy here, F1 alongside).
    tsv_columns : tuple
        Columns read from the local TSV: first text, second text (None), label.
    tsv_header : tuple or None
        Column names of a file with no header line (CoLA); None where the file has a header.
    tsv_labels : tuple
        How the label strings of the local file map to ids: ``tsv_labels[i]`` is the string for id ``i``.
        Empty for STS-B, whose label is a float score.
    """

    name: str
    glue_dir: str
    hf_config: str
    text_keys: tuple
    num_labels: int
    label_names: tuple
    eval_splits: tuple
    metrics: tuple
    main_metric: str
    tsv_columns: tuple
    tsv_header: Optional[tuple] = None
    tsv_labels: tuple = ("0", "1")

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_pair(self) -> bool:
        return self.text_keys[1] is not None

    def files(self, need_train: bool = True) -> dict[str, str]:
        """Split name -> file path relative to the GLUE folder, e.g. ``{"train": "SST-2/train.tsv", ...}``."""
        splits = (("train",) if need_train else ()) + self.eval_splits
        return {s: f"{self.glue_dir}/{s}.tsv" for s in splits}


_ACC = ("accuracy",)
_ACC_F1 = ("accuracy", "f1")

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec(
            "cola", "CoLA", "cola", ("sentence", None), 2, ("unacceptable", "acceptable"), ("dev",),
            ("matthews_correlation",), "matthews_correlation",
            tsv_columns=("sentence", None, "label"), tsv_header=("source", "label", "original_label", "sentence"),
        ),
        TaskSpec(
            "sst2", "SST-2", "sst2", ("sentence", None), 2, ("negative", "positive"), ("dev",), _ACC, "accuracy",
            tsv_columns=("sentence", None, "label"),
        ),
        TaskSpec(
            "mrpc", "MRPC", "mrpc", ("sentence1", "sentence2"), 2, ("not_equivalent", "equivalent"), ("dev",),
            _ACC_F1, "accuracy",
            # The header starts with a UTF-8 BOM ("\ufeffQuality"); the CSV reader strips it.
            tsv_columns=("#1 String", "#2 String", "Quality"),
        ),
        TaskSpec(
            "stsb", "STS-B", "stsb", ("sentence1", "sentence2"), 1, (), ("dev",), ("pearson", "spearman"), "pearson",
            tsv_columns=("sentence1", "sentence2", "score"), tsv_labels=(),
        ),
        TaskSpec(
            "qqp", "QQP", "qqp", ("question1", "question2"), 2, ("not_duplicate", "duplicate"), ("dev",), _ACC_F1,
            "accuracy",
            tsv_columns=("question1", "question2", "is_duplicate"),
        ),
        TaskSpec(
            "mnli", "MNLI", "mnli", ("premise", "hypothesis"), 3, ("entailment", "neutral", "contradiction"),
            ("dev_matched", "dev_mismatched"), _ACC, "accuracy",
            # train has label1 only, dev label1..label5; gold_label is the one GLUE scores against.
            tsv_columns=("sentence1", "sentence2", "gold_label"), tsv_labels=("entailment", "neutral", "contradiction"),
        ),
        TaskSpec(
            "qnli", "QNLI", "qnli", ("question", "sentence"), 2, ("entailment", "not_entailment"), ("dev",), _ACC,
            "accuracy",
            tsv_columns=("question", "sentence", "label"), tsv_labels=("entailment", "not_entailment"),
        ),
        TaskSpec(
            "rte", "RTE", "rte", ("sentence1", "sentence2"), 2, ("entailment", "not_entailment"), ("dev",), _ACC,
            "accuracy",
            tsv_columns=("sentence1", "sentence2", "label"), tsv_labels=("entailment", "not_entailment"),
        ),
        TaskSpec(
            # WNLI's 0/1 are already the hub ids (0 = not_entailment), unlike RTE/QNLI's strings.
            "wnli", "WNLI", "wnli", ("sentence1", "sentence2"), 2, ("not_entailment", "entailment"), ("dev",), _ACC,
            "accuracy",
            tsv_columns=("sentence1", "sentence2", "label"),
        ),
    ]
}

# Local split name -> hub split name.
_HUB_SPLITS = {"train": "train", "dev": "validation", "dev_matched": "validation_matched",
               "dev_mismatched": "validation_mismatched"}


@dataclass
class GlueData:
    """The splits of one task, normalised to ``text_a`` / ``text_b`` / ``label``.

    Attributes
    ----------
    spec : TaskSpec
    train : datasets.Dataset or None
        None when loaded with ``need_train=False``.
    eval : dict of str to datasets.Dataset
        Split name -> dataset, keys ``spec.eval_splits``.
    source : str
        The local GLUE folder read, or ``"hub:nyu-mll/glue"``.
    files : dict of str to str
        Path relative to the GLUE folder -> sha256 of every local file read; empty for the hub.
    train_files : dict of str to str
        The subset of ``files`` that the training examples came from (the dev file with ``train_from_dev``).
    """

    spec: TaskSpec
    train: Optional[datasets.Dataset]
    eval: dict[str, datasets.Dataset]
    source: str
    files: dict[str, str] = field(default_factory=dict)
    train_files: dict[str, str] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return self.spec.num_labels


def get_spec(task) -> TaskSpec:
    """The ``TaskSpec`` of a ``TaskName``, a name string, or a ``TaskSpec`` (returned as is)."""
    if isinstance(task, TaskSpec):
        return task
    name = getattr(task, "value", task)
    if name not in TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def resolve_data_dir(cfg: TaskConfig) -> Optional[Path]:
    """The local GLUE folder: ``cfg.data_dir``, else ``$GLUE_DIR``, else None (use the hub)."""
    d = cfg.data_dir or os.environ.get("GLUE_DIR") or None
    return Path(d).expanduser() if d else None


def load(cfg: TaskConfig, *, need_train: bool = True) -> GlueData:
    """Load a GLUE task's train and evaluation splits.

    Parameters
    ----------
    cfg : TaskConfig
        ``name`` picks the task; ``data_dir`` (or ``$GLUE_DIR``) the local folder; ``max_train_samples`` keeps a
        fixed random subset of the training set (``shuffle(seed=SUBSAMPLE_SEED)``, the same for every run seed);
        ``max_eval_samples`` keeps the first n rows of each evaluation split; ``train_from_dev`` replaces the
        training split by that many dev examples (``shuffle(seed=SUBSAMPLE_SEED)``) and evaluates the others.
    need_train : bool
        False loads only the evaluation splits (``train`` is None), e.g. to evaluate a fine-tuned model.

    Returns
    -------
    GlueData

    Raises
    ------
    DataNotFoundError
        The task folder exists but lacks a needed file (the hub is not tried then: a half-copied folder is a
        mistake to fix, not to paper over); or there is no task folder and the hub cannot be reached.
    """
    spec = get_spec(cfg.name)
    if cfg.train_from_dev is not None and len(spec.eval_splits) != 1:
        raise ValueError(f"task.train_from_dev: {spec.name} has {len(spec.eval_splits)} dev splits; it needs a task "
                         "with one")
    data_dir = resolve_data_dir(cfg)
    wanted = spec.files(need_train and cfg.train_from_dev is None)
    if data_dir is not None and (data_dir / spec.glue_dir).is_dir():
        missing = [str(data_dir / rel) for rel in wanted.values() if not (data_dir / rel).is_file()]
        if missing:
            raise DataNotFoundError(
                f"GLUE task {spec.name!r}: the folder {data_dir / spec.glue_dir} exists but lacks "
                f"{', '.join(missing)}. Expected layout under task.data_dir or $GLUE_DIR: {_layout(spec, need_train)}"
            )
        splits, files = {}, {}
        for split, rel in wanted.items():
            splits[split], files[rel] = _read_tsv(spec, data_dir / rel)
        source = str(data_dir.resolve())
    else:
        splits, files = _load_hub(spec, list(wanted), data_dir), {}
        source = f"hub:{HUB_DATASET}"

    train = splits.pop("train", None)
    train_files = {k: v for k, v in files.items() if k == wanted.get("train")}
    if cfg.train_from_dev is not None:
        (split, dev), = splits.items()
        if cfg.train_from_dev >= len(dev):
            raise ValueError(f"task.train_from_dev: must be < the {len(dev)} examples of {spec.name}'s {split} split, "
                             f"got {cfg.train_from_dev}")
        order = np.random.default_rng(SUBSAMPLE_SEED).permutation(len(dev))
        held_out = np.sort(order[cfg.train_from_dev:])
        train = dev.select(order[: cfg.train_from_dev]) if need_train else None
        splits = {split: dev.select(held_out)}
        train_files = dict(files)
    if train is not None and cfg.max_train_samples is not None:
        # A random subset, not the first rows: several GLUE train files are ordered (CoLA by source paper).
        n = min(cfg.max_train_samples, len(train))
        train = train.shuffle(seed=SUBSAMPLE_SEED).select(range(n))
    if cfg.max_eval_samples is not None:
        splits = {s: d.select(range(min(cfg.max_eval_samples, len(d)))) for s, d in splits.items()}
    return GlueData(spec=spec, train=train, eval=splits, source=source, files=files, train_files=train_files)


def tokenize(ds: datasets.Dataset, tokenizer, max_seq_length: int) -> datasets.Dataset:
    """Tokenize a normalised split for the model.

    Adds ``input_ids``, ``attention_mask`` and (if the tokenizer gives them) ``token_type_ids``, truncated to
    ``max_seq_length`` tokens and not padded: the collator pads each batch to its own longest sequence.
    ``label`` becomes ``labels`` (the name transformers models take), dtype kept; the text columns go.
    """
    pair = "text_b" in ds.column_names

    def encode(batch):
        args = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
        return tokenizer(*args, truncation=True, max_length=max_seq_length)

    text_cols = [c for c in ("text_a", "text_b") if c in ds.column_names]
    ds = ds.map(encode, batched=True, remove_columns=text_cols, desc="tokenize")
    return ds.rename_column("label", "labels")


# ----------------------------------------------------------------------------------------------------------------
# Local TSV files


def _read_tsv(spec: TaskSpec, path: Path) -> tuple[datasets.Dataset, str]:
    """Read one GLUE TSV into normalised columns; return it with the file's sha256."""
    raw = path.read_bytes()
    a, b, lab = spec.tsv_columns
    usecols = [c for c in (a, b, lab) if c is not None]
    ds = datasets.load_dataset(
        "csv",
        data_files={"rows": str(path)},
        split="rows",
        delimiter="\t",
        quoting=csv.QUOTE_NONE,  # fields hold literal quote characters
        keep_default_na=False,  # "NA", "null", "nan" are sentences, not missing values...
        na_filter=False,  # ...and so is an empty field (CoLA's original_label)
        header=None if spec.tsv_header else "infer",
        column_names=list(spec.tsv_header) if spec.tsv_header else None,
        usecols=usecols,
        # Read every column as text: type inference per chunk could turn a sentence like "1" into an int.
        features=datasets.Features({c: datasets.Value("string") for c in usecols}),
    )

    # Count the file's lines (a missing final newline, as in CoLA dev, still ends a row) and compare.
    n_lines = sum(1 for line in raw.split(b"\n") if line.strip(b"\r"))
    n_expected = n_lines - (0 if spec.tsv_header else 1)
    if len(ds) != n_expected:
        raise ValueError(f"{path}: read {len(ds)} rows but the file has {n_expected} data lines")

    label_ids = {s: i for i, s in enumerate(spec.tsv_labels)}

    def parse_label(s: str):
        if spec.is_regression:
            return float(s)
        if s not in label_ids:
            raise ValueError(f"{path}: label {s!r} is not one of {list(spec.tsv_labels)}")
        return label_ids[s]

    def normalise(batch):
        out = {"text_a": batch[a], "label": [parse_label(s) for s in batch[lab]]}
        if b is not None:
            out["text_b"] = batch[b]
        return out

    desc = f"normalise {path.parent.name}/{path.name}"
    ds = ds.map(normalise, batched=True, remove_columns=usecols, features=_features(spec), desc=desc)
    return ds, hashlib.sha256(raw).hexdigest()


def _features(spec: TaskSpec) -> datasets.Features:
    f = {"text_a": datasets.Value("string")}
    if spec.is_pair:
        f["text_b"] = datasets.Value("string")
    f["label"] = datasets.Value("float32" if spec.is_regression else "int64")
    return datasets.Features(f)


def _layout(spec: TaskSpec, need_train: bool) -> str:
    return ", ".join(f"GLUE_DIR/{rel}" for rel in spec.files(need_train).values())


# ----------------------------------------------------------------------------------------------------------------
# Hub fallback


def _load_hub(spec: TaskSpec, splits: list[str], data_dir: Optional[Path]) -> dict[str, datasets.Dataset]:
    """Load splits from ``nyu-mll/glue`` and normalise them as the local files are."""

    def not_found(reason: str) -> DataNotFoundError:
        if data_dir is None:
            local = "task.data_dir and $GLUE_DIR are both unset"
        else:
            looked_for = ", ".join(str(data_dir / rel) for rel in spec.files("train" in splits).values())
            local = f"{data_dir / spec.glue_dir} does not exist; looked for {looked_for}"
        layout = _layout(spec, "train" in splits)
        return DataNotFoundError(
            f"GLUE task {spec.name!r}: no local data ({local}), and the hub dataset {HUB_DATASET} "
            f"({spec.hf_config}) is unavailable: {reason}. Set task.data_dir or GLUE_DIR to a folder in the "
            f"GLUE layout: {layout}"
        )

    reason = hub.unreachable_reason()
    # In the libraries' offline mode load_dataset reads only the local hub cache (and fails at once without it),
    # so a copy downloaded earlier still works; any other unreachable hub fails here, without waiting on it.
    if reason and not datasets.config.HF_HUB_OFFLINE:
        raise not_found(reason)
    out = {}
    for split in splits:
        try:
            ds = datasets.load_dataset(HUB_DATASET, spec.hf_config, split=_HUB_SPLITS[split])
        except Exception as e:  # noqa: BLE001 - any failure here means the same thing to the user
            why = f"{reason} and the hub cache holds no copy" if reason else f"{type(e).__name__}: {e}"
            raise not_found(why) from e
        a, b = spec.text_keys
        cols = {a: "text_a", **({b: "text_b"} if b else {})}
        ds = ds.select_columns([*cols, "label"]).rename_columns(cols)
        out[split] = ds.cast(_features(spec))  # ClassLabel -> int64 ids, as the local loader gives
    return out
