"""Config composition: every option of every group composes, and bad values fail before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from aimc_runner.config import RunConfig, TaskName, TrainMode, register_configs
from conftest import CONF_DIR

register_configs()
GROUPS = ["task", "model", "tile", "train", "eval"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def make(*overrides: str) -> RunConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_object(cfg)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option):
    run = make(f"{group}={option}")
    assert isinstance(run, RunConfig)
    if group == "task":
        assert run.task.name == TaskName(option)
    if group == "model":
        assert run.model.name == option
    if group == "train":
        assert run.train.mode == TrainMode(option)
    if group == "tile":
        assert run.tile.name == option


def test_all_nine_glue_tasks_have_a_config():
    assert options("task") == sorted(t.value for t in TaskName)


def test_defaults_are_the_main_job():
    run = make()
    assert (run.task.name, run.model.name, run.tile.name, run.train.mode) == (
        TaskName.sst2, "minilm", "ideal", TrainMode.fp)


@pytest.mark.parametrize("group", ["task", "model", "tile", "train"])
def test_unknown_option_lists_the_allowed_values(group):
    with pytest.raises(ConfigCompositionException) as err:
        make(f"{group}=nonexistent")
    msg = str(err.value)
    for option in options(group):
        assert option in msg


@pytest.mark.parametrize(
    "override,field",
    [
        ("train.learning_rate=0", "train.learning_rate"),
        ("train.learning_rate=-1e-5", "train.learning_rate"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.batch_size=-4", "train.batch_size"),
        ("eval.batch_size=0", "eval.batch_size"),
        ("eval.seeds=0", "eval.seeds"),
        ("model.max_seq_length=1024", "model.max_seq_length"),
        ("task.max_train_samples=0", "task.max_train_samples"),
        ("train.warmup_ratio=1.5", "train.warmup_ratio"),
        ("train.noise_std=-0.1", "train.noise_std"),
    ],
)
def test_out_of_range_values_name_the_field(override, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make(override)


def test_wrong_type_is_rejected_by_the_schema():
    with pytest.raises(ConfigCompositionException) as err:
        make("train.batch_size=many")
    assert "batch_size" in str(err.value)


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigCompositionException):
        make("train.not_a_field=1")


def test_analog_presets_default_to_hwa_training_and_cli_choice_wins():
    assert make("tile=pcm_irdrop").train.mode == TrainMode.hwa
    assert make("tile=pcm_irdrop", "train=fp").train.mode == TrainMode.fp
    assert make("tile=ideal").train.mode == TrainMode.fp


def test_a_preset_part_can_be_swapped_and_fields_overridden():
    run = make("tile=pcm_irdrop", "circuit@tile.circuit=irdrop_float", "device@tile.device=ideal")
    assert run.tile.circuit.idle_rows.value == "float" and not run.tile.device.read_noise
    assert make("tile=pcm_irdrop", "tile.circuit.r_wire_ohm=0.3").tile.circuit.r_wire_ohm == 0.3


@pytest.mark.parametrize(
    "overrides,field",
    [
        (["tile=irdrop_float", "tile.circuit.method=effective"], "tile.circuit.method"),
        (["tile=pcm_irdrop", "tile.circuit.idle_rows=float", "tile.circuit.method=time_stepped"],
         "tile.device.read_noise"),
        (["tile=irdrop_float", "train=tile_aware"], "train.mode"),
        (["tile=pcm_drift", "tile.t_inference_s=-1"], "tile.t_inference_s"),
        (["tile=pcm_irdrop", "train.noise_std=-0.01"], "train.noise_std"),
        (["tile=pcm_irdrop", "eval.seeds=0"], "eval.seeds"),
        (["tile=pcm_irdrop", "tile.circuit.r_wire_ohm=-0.1"], "tile.circuit.r_wire_ohm"),
        (["tile=pcm_irdrop", "tile.pwm.bits=1"], "tile.pwm.bits"),
        (["tile=pcm_irdrop", "tile.device.g_min_us=30"], "tile.device.g_min_us"),
        (["tile=pcm_irdrop", "tile.circuit.r_row_ohm=0.15"], "tile.device.read_noise"),
        (["tile=irdrop", "tile.circuit.r_row_ohm=-1"], "tile.circuit.r_row_ohm"),
        (["tile=irdrop", "tile.circuit.r_row_ohm=0.15", "train=tile_aware"], "train.mode"),
    ],
)
def test_physically_impossible_or_out_of_range_tiles_fail_before_any_model_is_loaded(overrides, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make(*overrides)
