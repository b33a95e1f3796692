"""GLUE loading: the task table, every task from the hand-made fixtures, the real files' quirks, errors."""

import hashlib
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import datasets
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from aimc_runner import tasks
from aimc_runner.config import TaskConfig, TaskName

FIXTURES = Path(__file__).parent / "fixtures" / "glue"

# (task, split) -> (rows, label counts); hand-counted from tests/fixtures/glue.
FIXTURE_COUNTS = {
    ("cola", "train"): (8, {0: 3, 1: 5}),
    ("cola", "dev"): (6, {0: 2, 1: 4}),
    ("sst2", "train"): (8, {0: 4, 1: 4}),
    ("sst2", "dev"): (6, {0: 3, 1: 3}),
    ("mrpc", "train"): (6, {0: 3, 1: 3}),
    ("mrpc", "dev"): (6, {0: 2, 1: 4}),
    ("stsb", "train"): (6, None),
    ("stsb", "dev"): (6, None),
    ("qqp", "train"): (6, {0: 3, 1: 3}),
    ("qqp", "dev"): (6, {0: 3, 1: 3}),
    ("mnli", "train"): (6, {0: 2, 1: 2, 2: 2}),
    ("mnli", "dev_matched"): (6, {0: 2, 1: 2, 2: 2}),
    ("mnli", "dev_mismatched"): (7, {0: 3, 1: 2, 2: 2}),
    ("qnli", "train"): (6, {0: 3, 1: 3}),
    ("qnli", "dev"): (6, {0: 3, 1: 3}),
    ("rte", "train"): (6, {0: 3, 1: 3}),
    ("rte", "dev"): (6, {0: 3, 1: 3}),
    ("wnli", "train"): (6, {0: 3, 1: 3}),
    ("wnli", "dev"): (6, {0: 3, 1: 3}),
}


@pytest.fixture(autouse=True, scope="module")
def _private_datasets_cache(tmp_path_factory):
    """Keep the csv builder's cache out of ~/.cache: tmp_path folders would leave a new entry every run."""
    old = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("hf_datasets_cache")
    yield
    datasets.config.HF_DATASETS_CACHE = old


@pytest.fixture
def no_hub(monkeypatch):
    """Make the hub unreachable, whatever the network, and fail loudly if a loader tries it anyway."""
    monkeypatch.setattr(tasks.hub, "unreachable_reason", lambda timeout_s=3.0: "unreachable in this test")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)


def cfg(name, data_dir=FIXTURES, **kw):
    return TaskConfig(name=TaskName(name), data_dir=None if data_dir is None else str(data_dir), **kw)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# The table


def test_table_covers_the_nine_tasks_consistently():
    assert set(tasks.TASKS) == {t.value for t in TaskName}
    for name, spec in tasks.TASKS.items():
        assert spec.name == name
        assert spec.main_metric in spec.metrics
        if spec.is_regression:
            assert spec.num_labels == 1 and spec.label_names == () and spec.tsv_labels == ()
        else:
            assert len(spec.label_names) == len(spec.tsv_labels) == spec.num_labels
    assert tasks.TASKS["mnli"].eval_splits == ("dev_matched", "dev_mismatched")
    assert tasks.TASKS["stsb"].is_regression and not tasks.TASKS["rte"].is_regression
    assert not tasks.TASKS["sst2"].is_pair and tasks.TASKS["qqp"].is_pair
    assert tasks.get_spec(TaskName.rte) is tasks.get_spec("rte") is tasks.TASKS["rte"]


# ----------------------------------------------------------------------------------------------------------------
# Every task from the fixtures


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_task_loads_from_fixtures(name, no_hub):
    data = tasks.load(cfg(name))
    spec = data.spec
    assert data.source == str(FIXTURES.resolve())
    assert set(data.eval) == set(spec.eval_splits)
    assert data.files == {rel: sha256(FIXTURES / rel) for rel in spec.files().values()}

    columns = ["text_a", "text_b", "label"] if spec.is_pair else ["text_a", "label"]
    label_dtype = "float32" if spec.is_regression else "int64"
    for split, ds in [("train", data.train), *data.eval.items()]:
        rows, label_counts = FIXTURE_COUNTS[(name, split)]
        assert ds.column_names == columns
        assert ds.features["text_a"].dtype == "string"
        assert ds.features["label"].dtype == label_dtype
        assert len(ds) == rows
        if label_counts is not None:
            assert dict(Counter(ds["label"])) == label_counts
        assert all(isinstance(t, str) and t for t in ds["text_a"])


def test_text_that_looks_missing_or_numeric_stays_text(no_hub):
    sst2 = tasks.load(cfg("sst2"))
    assert {"NA", "null", "2001"} <= set(sst2.train["text_a"])
    assert {"nan", "N/A"} <= set(sst2.eval["dev"]["text_a"])
    stsb = tasks.load(cfg("stsb"))
    assert stsb.train[3]["text_a"] == "nan" and stsb.train[3]["text_b"] == "NA"


def test_quote_characters_and_whitespace_are_kept(no_hub):
    train = tasks.load(cfg("sst2")).train
    assert train[3]["text_a"] == 'the so-called " twist " arrives an hour too late '
    assert train[5]["text_a"] == 'a "quiet triumph'  # an unbalanced quote must not swallow the next rows
    assert train[0]["text_a"].endswith(" . ")  # SST-2's trailing space, as in the real files
    rte = tasks.load(cfg("rte")).eval["dev"]
    assert rte[2]["text_a"] == 'The author\'s "final" novel sold a million copies.'


def test_cola_without_header_or_final_newline(no_hub):
    assert not (FIXTURES / "CoLA/dev.tsv").read_bytes().endswith(b"\n")
    data = tasks.load(cfg("cola"))
    assert data.train[0] == {"text_a": "The kettle whistled on the stove.", "label": 1}
    assert data.train[1]["label"] == 0
    assert data.eval["dev"][-1] == {"text_a": "It rained, so they left early.", "label": 1}


def test_mrpc_header_with_byte_order_mark(no_hub):
    assert (FIXTURES / "MRPC/train.tsv").read_bytes().startswith("\ufeffQuality\t".encode())
    dev = tasks.load(cfg("mrpc")).eval["dev"]
    assert dev[0] == {
        "text_a": "The ferry service resumes on Monday.",
        "text_b": "Ferries will run again from Monday.",
        "label": 1,
    }


def test_string_labels_map_to_hub_ids(no_hub):
    # MNLI: gold_label, not label1..label5 (the fixtures' dev label2 disagrees with the gold label).
    mnli = tasks.load(cfg("mnli"))
    assert mnli.eval["dev_matched"]["label"] == [0, 2, 1, 1, 0, 2]
    assert mnli.train["label"] == [0, 2, 1, 1, 0, 2]
    assert tasks.load(cfg("qnli")).eval["dev"]["label"] == [0, 1, 1, 0, 0, 1]  # entailment = 0
    assert tasks.load(cfg("wnli")).eval["dev"]["label"] == [1, 0, 1, 0, 0, 1]  # as in the file (1 = entailment)
    assert tasks.TASKS["wnli"].label_names[1] == "entailment"


def test_stsb_scores_are_float32(no_hub):
    dev = tasks.load(cfg("stsb")).eval["dev"]
    assert dev["label"] == pytest.approx([5.0, 0.0, 0.75, 3.8, 4.4, 2.6])


def test_fixture_lines_have_the_field_count_of_their_header():
    # Guards the fixtures themselves: real tabs, no field lost to an editor turning tabs into spaces.
    for path in FIXTURES.glob("*/*.tsv"):
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        n_fields = 4 if path.parent.name == "CoLA" else lines[0].count("\t") + 1
        assert all(line.count("\t") + 1 == n_fields for line in lines), path


# ----------------------------------------------------------------------------------------------------------------
# Sizes


def test_max_train_samples_is_a_fixed_seeded_subset(no_hub):
    full = tasks.load(cfg("sst2")).train
    a = tasks.load(cfg("sst2", max_train_samples=5)).train
    b = tasks.load(cfg("sst2", max_train_samples=5)).train
    assert len(a) == 5
    assert a.to_list() == b.to_list()
    assert a.to_list() == full.shuffle(seed=0).select(range(5)).to_list()
    assert tasks.load(cfg("sst2", max_train_samples=1000)).train.num_rows == len(full)


def test_max_eval_samples_keeps_the_first_rows_of_each_split(no_hub):
    full = tasks.load(cfg("mnli"))
    cut = tasks.load(cfg("mnli", max_eval_samples=4))
    for split in ("dev_matched", "dev_mismatched"):
        assert cut.eval[split].to_list() == full.eval[split].to_list()[:4]
    assert len(cut.train) == len(full.train)


def test_need_train_false_reads_only_eval_files(tmp_path, no_hub):
    # QNLI as in the shared offline copy: dev only.
    (tmp_path / "QNLI").mkdir()
    shutil.copy(FIXTURES / "QNLI/dev.tsv", tmp_path / "QNLI/dev.tsv")
    data = tasks.load(cfg("qnli", tmp_path), need_train=False)
    assert data.train is None and len(data.eval["dev"]) == 6
    assert list(data.files) == ["QNLI/dev.tsv"]


def test_train_from_dev_fine_tunes_on_a_seeded_part_of_dev_and_evaluates_the_rest(tmp_path, no_hub):
    (tmp_path / "QNLI").mkdir()  # dev only, like the shared copy
    shutil.copy(FIXTURES / "QNLI/dev.tsv", tmp_path / "QNLI/dev.tsv")
    full = tasks.load(cfg("qnli", tmp_path), need_train=False).eval["dev"].to_list()
    a = tasks.load(cfg("qnli", tmp_path, train_from_dev=2))
    b = tasks.load(cfg("qnli", tmp_path, train_from_dev=2))
    train, dev = a.train.to_list(), a.eval["dev"].to_list()
    assert len(train) == 2 and len(dev) == 4 and a.train.to_list() == b.train.to_list()
    assert sorted(map(str, train + dev)) == sorted(map(str, full))  # a partition of the dev split
    assert dev == [r for r in full if r not in train]  # evaluated in file order
    assert a.train_files == {"QNLI/dev.tsv": a.files["QNLI/dev.tsv"]}
    assert tasks.load(cfg("qnli", tmp_path, train_from_dev=2), need_train=False).train is None
    with pytest.raises(ValueError, match="task.train_from_dev: must be < the 6 examples"):
        tasks.load(cfg("qnli", tmp_path, train_from_dev=6))
    with pytest.raises(ValueError, match="task.train_from_dev: mnli has 2 dev splits"):
        tasks.load(cfg("mnli", train_from_dev=2))


def test_train_files_are_the_training_split_only(no_hub):
    data = tasks.load(cfg("rte"))
    assert list(data.train_files) == ["RTE/train.tsv"]


def test_hub_fallback_normalises_like_the_local_files(tmp_path, monkeypatch):
    """No task folder and a reachable hub: the hub's splits and columns become the local ones."""
    requested = []

    def fake_load_dataset(path, name, split):
        requested.append((path, name, split))
        features = datasets.Features({
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
            "idx": datasets.Value("int32"),
        })
        rows = {"premise": ["P one.", "P two."], "hypothesis": ["H one.", "H two."], "label": [2, 0], "idx": [0, 1]}
        return datasets.Dataset.from_dict(rows, features=features)

    monkeypatch.setattr(tasks.hub, "unreachable_reason", lambda timeout_s=3.0: None)
    monkeypatch.setattr(tasks.datasets, "load_dataset", fake_load_dataset)
    data = tasks.load(cfg("mnli", tmp_path), need_train=False)
    assert requested == [
        ("nyu-mll/glue", "mnli", "validation_matched"),
        ("nyu-mll/glue", "mnli", "validation_mismatched"),
    ]
    assert data.source == "hub:nyu-mll/glue" and data.files == {} and data.train is None
    ds = data.eval["dev_mismatched"]
    assert ds.features == tasks._features(tasks.TASKS["mnli"])
    assert ds.to_list() == [
        {"text_a": "P one.", "text_b": "H one.", "label": 2},
        {"text_a": "P two.", "text_b": "H two.", "label": 0},
    ]


# ----------------------------------------------------------------------------------------------------------------
# Errors


def test_missing_file_in_task_folder_names_it_and_skips_the_hub(tmp_path, monkeypatch):
    (tmp_path / "QNLI").mkdir()
    shutil.copy(FIXTURES / "QNLI/dev.tsv", tmp_path / "QNLI/dev.tsv")
    monkeypatch.setattr(tasks, "_load_hub", lambda *a: pytest.fail("must not fall back to the hub"))
    with pytest.raises(tasks.DataNotFoundError) as err:
        tasks.load(cfg("qnli", tmp_path))
    msg = str(err.value)
    assert str(tmp_path / "QNLI/train.tsv") in msg
    assert "GLUE_DIR/QNLI/train.tsv, GLUE_DIR/QNLI/dev.tsv" in msg


def test_missing_task_folder_and_unreachable_hub_fails_fast_and_clearly(tmp_path, no_hub):
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        tasks.load(cfg("mnli", tmp_path))
    assert time.perf_counter() - t0 < 2.0
    msg = str(err.value)
    assert "GLUE_DIR" in msg and "task.data_dir" in msg
    assert str(tmp_path / "MNLI/dev_matched.tsv") in msg  # the exact paths looked for...
    # ...and the layout
    assert "GLUE_DIR/MNLI/train.tsv, GLUE_DIR/MNLI/dev_matched.tsv, GLUE_DIR/MNLI/dev_mismatched.tsv" in msg


def test_no_data_dir_at_all(monkeypatch, no_hub):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(tasks.DataNotFoundError, match="task.data_dir and \\$GLUE_DIR are both unset"):
        tasks.load(cfg("sst2", None), need_train=False)


def test_offline_env_makes_the_hub_unreachable_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # as if set after datasets was imported
    assert tasks.hub.unreachable_reason() == "HF_HUB_OFFLINE is set"
    t0 = time.perf_counter()
    with pytest.raises(tasks.DataNotFoundError, match="HF_HUB_OFFLINE is set"):
        tasks.load(cfg("rte", tmp_path))
    assert time.perf_counter() - t0 < 2.0


def test_reachability_check_is_bounded(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.invalid")  # .invalid never resolves (RFC 2606)
    t0 = time.perf_counter()
    reason = tasks.hub.unreachable_reason(timeout_s=1.0)
    assert time.perf_counter() - t0 < 2.0
    assert "hub.example.invalid:443" in reason


def test_a_row_the_reader_would_split_is_caught(tmp_path, no_hub):
    # A bare carriage return ends a row for pandas but not for GLUE: the row count check must notice.
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2/dev.tsv").write_bytes(b"sentence\tlabel\nfine \t1\nbroken\rline \t0\n")
    with pytest.raises(ValueError, match="read 3 rows but the file has 2 data lines"):
        tasks.load(cfg("sst2", tmp_path), need_train=False)


def test_unknown_label_is_an_error(tmp_path, no_hub):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE/dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tA b.\tC d.\tentails\n")
    with pytest.raises(ValueError, match="'entails' is not one of"):
        tasks.load(cfg("rte", tmp_path), need_train=False)


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GLUE_DIR", str(tmp_path))
    assert tasks.resolve_data_dir(cfg("sst2", "/elsewhere")) == Path("/elsewhere")
    assert tasks.resolve_data_dir(cfg("sst2", None)) == tmp_path
    monkeypatch.delenv("GLUE_DIR")
    assert tasks.resolve_data_dir(cfg("sst2", None)) is None


# ----------------------------------------------------------------------------------------------------------------
# Tokenization


def tiny_tokenizer(with_token_types=True):
    """A word-level BERT-style tokenizer over a handful of words; unknown words become [UNK]."""
    words = "[PAD] [UNK] [CLS] [SEP] the a dog cat is was on".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    names = ["input_ids", "token_type_ids", "attention_mask"] if with_token_types else ["input_ids", "attention_mask"]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_input_names=names
    )


def test_tokenize_pair_task_truncates_without_padding(no_hub):
    dev = tasks.load(cfg("mrpc")).eval["dev"]
    out = tasks.tokenize(dev, tiny_tokenizer(), max_seq_length=20)
    assert set(out.column_names) == {"labels", "input_ids", "token_type_ids", "attention_mask"}
    assert out["labels"] == dev["label"] and out.features["labels"].dtype == "int64"
    full = [len(ids) for ids in tasks.tokenize(dev, tiny_tokenizer(), max_seq_length=512)["input_ids"]]
    lengths = [len(ids) for ids in out["input_ids"]]
    assert lengths == [min(n, 20) for n in full]  # cut at 20, and nothing padded
    assert min(full) < 20 < max(full)  # the fixture has both kinds of pair
    first = out[0]
    assert first["input_ids"][0] == 2 and first["input_ids"][-1] == 3
    assert set(first["token_type_ids"]) == {0, 1}
    assert first["attention_mask"] == [1] * len(first["input_ids"])


def test_tokenize_single_sentence_and_regression_labels(no_hub):
    sst2 = tasks.tokenize(tasks.load(cfg("sst2")).eval["dev"], tiny_tokenizer(with_token_types=False), 128)
    assert set(sst2.column_names) == {"labels", "input_ids", "attention_mask"}
    assert sst2[0]["input_ids"] == [2, 1, 3]  # "nan" -> [CLS] [UNK] [SEP]
    stsb_dev = tasks.load(cfg("stsb")).eval["dev"]
    stsb = tasks.tokenize(stsb_dev, tiny_tokenizer(), 128)
    assert stsb.features["labels"].dtype == "float32"
    assert stsb["labels"] == stsb_dev["label"]


# ----------------------------------------------------------------------------------------------------------------
# The real files (only where GLUE_DIR holds them; never copied into the repo)

# (task, split) -> (rows, label counts, sha256), from /work/shared/data/glue/README.md.
REAL = {
    ("sst2", "train"): (
        67349, {1: 37569, 0: 29780}, "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"
    ),
    ("sst2", "dev"): (872, {1: 444, 0: 428}, "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"),
    ("cola", "train"): (8551, {1: 6023, 0: 2528}, "cb368ebeb9f27d7ad03720d27ddc95687a311bdb100781a2fe59a5f5b1bc0624"),
    ("cola", "dev"): (1043, {1: 721, 0: 322}, "8c013e21dc39957cac37378d87bebe225b694a0d5fe13eded66c2856628833fd"),
    ("mrpc", "train"): (3668, {1: 2474, 0: 1194}, "122becc469405bc16f9defcb8715d2a4b7ce600e9d9381e6dc42bfdd1494c51d"),
    ("mrpc", "dev"): (408, {1: 279, 0: 129}, "81c8a1a9e1dfe461dd2c1a4f98f43fe18bece44d2bf9e3d0b245b88e5aa5eaf7"),
    ("rte", "train"): (2490, {0: 1249, 1: 1241}, "41e3a9b063433392343fad9e962cf2f58b681c78d8f71592f4186f0837246c5c"),
    ("rte", "dev"): (277, {0: 146, 1: 131}, "80230dfa1347282e7b532b06a1004a76a710087541189bf874223ddf0e3819fb"),
    ("stsb", "train"): (5749, None, "41c4d978b6162abdcada7e49a982211954cca5459c228db478af333124b257a2"),
    ("stsb", "dev"): (1500, None, "fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59"),
    ("wnli", "train"): (635, {0: 323, 1: 312}, "9a88e9d54b6861cc796a088e9acf4f5f65064a9ef65ae6fa7a688b28391e5c9a"),
    ("wnli", "dev"): (71, {0: 40, 1: 31}, "cba00490596dd14be8cf53b4f53bb744abe3a7b89f81ab210528d80225338ed5"),
    # QNLI dev: 2,702 entailment / 2,761 not_entailment.
    ("qnli", "dev"): (5463, {0: 2702, 1: 2761}, "763e95932dd3578251de71582e06829015f9c3815a518c751dc537219b159de4"),
}
GLUE_DIR = os.environ.get("GLUE_DIR")


@pytest.mark.skipif(
    not GLUE_DIR or not all((Path(GLUE_DIR) / tasks.TASKS[t].files()[s]).is_file() for t, s in REAL),
    reason="set GLUE_DIR to a folder holding the real GLUE files listed in REAL",
)
@pytest.mark.parametrize("name", sorted({t for t, _ in REAL}))
def test_real_glue_row_and_label_counts(name, no_hub):
    splits = [s for t, s in REAL if t == name]
    data = tasks.load(cfg(name, GLUE_DIR), need_train="train" in splits)
    loaded = {"train": data.train, **data.eval}
    for split in splits:
        rows, label_counts, digest = REAL[(name, split)]
        ds = loaded[split]
        assert len(ds) == rows, split
        if label_counts is not None:
            assert dict(Counter(ds["label"])) == label_counts, split
        assert data.files[tasks.TASKS[name].files()[split]] == digest
    if name == "stsb":
        scores = data.eval["dev"]["label"]
        assert min(scores) == 0.0 and max(scores) == 5.0
