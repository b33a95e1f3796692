"""``aimc-validate``: small validations through real ngspice, the layer source, and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aimc_runner.validate import ValidateConfig, run_validation
from aimc_runner.validate_sources import BadInput
from conftest import CONF_DIR, GLUE_FIXTURES

SMALL = ["rows=6", "cols=3", "row_probes=3", "workers=2"]


def make(*overrides: str) -> ValidateConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_object(compose("validate", overrides=list(overrides)))


@pytest.mark.parametrize("source", ["random", "all_on"])
def test_model_matches_ngspice_in_both_conventions(ngspice, tmp_path, source):
    rec = run_validation(make(*SMALL, f"source={source}", "r_wire_ohm=[0.15,1.0,300.0]"), tmp_path)
    assert rec["pass"]
    assert [(c["idle_rows"], c["r_wire_ohm"]) for c in rec["cases"]] == [
        (i, r) for i in ("hold", "float") for r in (0.15, 1.0, 300.0)]
    for c in rec["cases"]:
        assert c["paths"] == (["effective", "time_stepped"] if c["idle_rows"] == "hold" else ["time_stepped"])
        for row in c["columns"]:
            for p in c["paths"]:
                assert row[f"rel_error_{p}"] <= 1e-5
                assert row[f"speedup_{p}"] > 0
        assert len(c["row_probes"]) == 3
        if c["r_wire_ohm"] == 300.0:  # not vacuous: the IR-drop is far above the tolerance
            assert c["ir_drop_fs"] > 1e-3
    on_disk = json.loads((tmp_path / "validate.json").read_text())
    for key in ("case", "q_full_scale_fc", "cases", "summary", "pass", "versions", "git", "config", "ngspice",
                "wall_s"):
        assert key in on_disk
    assert set(on_disk["summary"]) == {"hold", "float"}
    assert (tmp_path / "validate.png").stat().st_size > 0
    assert "PASS" in (tmp_path / "validate.txt").read_text()
    assert len(list((tmp_path / "netlists").rglob("*.cir"))) == 6 * (3 + 3)


def test_odd_first_column_read_at_the_north_edge(ngspice, tmp_path):
    # adc_sides=both: tile column 1 is read at the other edge; a wrong orientation would miss by far more than 1e-5.
    rec = run_validation(make("rows=5", "cols=2", "column_offset=1", "row_probes=0", "r_wire_ohm=[300.0]"), tmp_path)
    assert rec["pass"]
    assert [r["adc"] for r in rec["cases"][0]["columns"]] == ["north", "south"]


def test_layer_source_on_the_tiny_model(ngspice, tmp_path):
    cfg = make("source=layer", "model=tiny", f"task.data_dir={GLUE_FIXTURES}", "rows=8", "cols=2", "row_probes=0",
               "r_wire_ohm=[300.0]", "layer=encoder.layer.1.attention.self.query")
    rec = run_validation(cfg, tmp_path)
    assert rec["pass"]
    assert rec["case"]["layer"] == "bert.encoder.layer.1.attention.self.query"
    assert rec["case"]["inputs_on_tile"] == 8 and rec["case"]["sentences"] > 0
    assert rec["max_pulse_slots"] > 0


def test_layer_with_row_wires_also_gives_the_row_effect_over_its_whole_tile(ngspice, tmp_path):
    cfg = make("source=layer", "model=tiny", f"task.data_dir={GLUE_FIXTURES}", "rows=8", "cols=2", "column_offset=2",
               "r_wire_ohm=[300.0]", "conventions=[hold]", "tile.circuit.r_row_ohm=200.0",
               "layer=encoder.layer.1.attention.self.query")
    rec = run_validation(cfg, tmp_path)
    assert rec["pass"]
    (full,) = rec["full_width"]
    assert (full["rows"], full["cols"], full["idle_rows"]) == (8, 64, "hold")  # the tiny model's 64 outputs
    # In place, the selected columns' row wires also carry the current of the 2 columns west and 60 east of them.
    in_slice = rec["cases"][0]["row_effect"]
    assert full["slice_row_effect_max_abs"] != pytest.approx(in_slice["max_abs"], rel=1e-3)
    assert full["row_effect_max_abs"] >= full["slice_row_effect_max_abs"] > 0
    assert "whole first tile, 8 x 64 " in (tmp_path / "validate.txt").read_text()


def test_unknown_layer_lists_the_available_names(tmp_path):
    cfg = make("source=layer", "model=tiny", f"task.data_dir={GLUE_FIXTURES}", "layer=encoder.layer.0.nope")
    with pytest.raises(BadInput, match=r"(?s)not an analog layer.*bert\.encoder\.layer\.1\.output\.dense"):
        run_validation(cfg, tmp_path)


def test_too_large_a_slice_is_refused_with_an_estimate_unless_forced(ngspice, tmp_path):
    small = ["rows=3", "cols=1", "row_probes=0", "max_minutes=1e-6"]
    with pytest.raises(BadInput, match=r"estimated .* min > max_minutes"):
        run_validation(make(*small), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    assert run_validation(make(*small, "force=true"), tmp_path / "forced")["pass"]


def test_missing_ngspice_names_the_debian_package(tmp_path, monkeypatch):
    with pytest.raises(BadInput, match=r"Debian package `ngspice`.*apt-get install ngspice"):
        run_validation(make("ngspice=no-such-ngspice"), tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # ngspice nowhere on PATH
    with pytest.raises(BadInput, match="apt-get install ngspice"):
        run_validation(make(), tmp_path)


def test_bad_values_name_the_field():
    with pytest.raises(Exception, match="column_offset"):
        make("column_offset=510", "cols=8")
    with pytest.raises(Exception, match="r_wire_ohm"):
        make("r_wire_ohm=[-1.0]")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("aimc-validate")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_writes_the_table_json_and_plot(ngspice, tmp_path):
    proc = _cli("rows=4", "cols=2", "row_probes=2", "source=far_row", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "summary" in proc.stdout and "PASS" in proc.stdout
    for name in ("validate.json", "validate.png", "validate.txt", ".hydra/config.yaml"):
        assert (tmp_path / "run" / name).is_file()
    bad = _cli("ngspice=no-such-ngspice", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert bad.returncode != 0
    assert "apt-get install ngspice" in bad.stderr and "Traceback" not in bad.stderr


def test_a_relaxed_rerun_is_recorded_per_column(tmp_path):
    # A stand-in for ngspice that stops on "timestep too small" at reltol=1e-12 (as ngspice-39 does on some 512-row
    # float netlists) and answers at 1e-10; the retry itself lives in circuit/spice.py (tests/circuit/test_spice.py).
    fake = tmp_path / "fake-ngspice"
    fake.write_text('#!/bin/sh\nif grep -q "^.options reltol=1e-10 " "$2"; then echo "q0 = 2.5e-15"; '
                    'else echo "doAnalyses: TRAN:  Timestep too small; time = 6.9e-08"; fi\n')
    fake.chmod(0o755)
    from aimc_runner.validate import ValidationFailed

    with pytest.raises(ValidationFailed):  # 2.5 fC is not the model's charge
        run_validation(make("rows=3", "cols=1", "row_probes=0", "conventions=[float]", f"ngspice={fake}"), tmp_path)
    rec = json.loads((tmp_path / "validate.json").read_text())
    assert [r["spice_relaxed"] for r in rec["cases"][0]["columns"]] == [True]
    assert rec["cases"][0]["columns"][0]["q_spice_fc"] == pytest.approx(2.5)
    assert (tmp_path / "netlists" / "float_r0.15" / "col0.relaxed.cir").is_file()


def test_disagreement_beyond_the_tolerance_fails_after_writing_the_record(ngspice, tmp_path):
    from aimc_runner.validate import ValidationFailed

    with pytest.raises(ValidationFailed, match="disagree beyond tolerance"):
        run_validation(make("rows=3", "cols=1", "row_probes=0", "r_wire_ohm=[300.0]", "tolerance=1e-30"), tmp_path)
    rec = json.loads((tmp_path / "validate.json").read_text())
    assert rec["pass"] is False and "FAIL" in (tmp_path / "validate.txt").read_text()


@pytest.mark.parametrize("r_row, r_wire", [(0.15, 0.15), (1.0, 0.15), (200.0, 300.0)])
def test_row_wires_couple_the_slice_into_one_netlist(ngspice, tmp_path, r_row, r_wire):
    rec = run_validation(make(*SMALL, f"tile.circuit.r_row_ohm={r_row}", f"r_wire_ohm=[{r_wire}]"), tmp_path)
    assert rec["pass"] and rec["coupled"] and rec["r_row_ohm"] == r_row
    assert [c["idle_rows"] for c in rec["cases"]] == ["hold", "float"]
    nets = sorted((tmp_path / "netlists").rglob("*.cir"))
    assert [n.relative_to(tmp_path / "netlists").as_posix() for n in nets] == [
        f"float_r{r_wire:g}/cols0-2.cir", f"hold_r{r_wire:g}/cols0-2.cir"]  # one netlist per case, no probes
    assert all(f"RRp5_2 rp5_1 rp5_2 {r_row!r}" in n.read_text() for n in nets)  # the row wires run across the slice
    for c in rec["cases"]:
        assert c["row_probes"] == []
        assert c["paths"] == (["effective", "time_stepped"] if c["idle_rows"] == "hold" else ["time_stepped"])
        for row in c["columns"]:
            for p in c["paths"]:
                assert row[f"rel_error_{p}"] <= 1e-5
            assert row["row_effect"] == pytest.approx((row["q_spice_fc"] - row["q_no_rows_fc"])
                                                      / abs(row["q_no_rows_fc"]))
        effect = c["row_effect"]
        assert effect["max_abs"] >= effect["mean_abs"] > 0
        if r_row == 200.0:  # not vacuous: the row wires move the outputs far beyond the tolerance
            assert effect["mean_abs"] > 1e-3
    assert rec["summary"]["hold"]["row_effect_max_abs"] == rec["cases"][0]["row_effect"]["max_abs"]
    text = (tmp_path / "validate.txt").read_text()
    assert "one netlist of the slice as a tile of 3 columns" in text and "row_eff" in text


def test_coupled_slice_from_an_odd_column_is_read_at_the_right_edges(ngspice, tmp_path):
    # adc_sides=both: tile column 1 is read at the north edge; the slice's netlist is flipped as the model's case is.
    rec = run_validation(make("rows=5", "cols=2", "column_offset=1", "r_wire_ohm=[300.0]", "conventions=[hold]",
                              "tile.circuit.r_row_ohm=200.0"), tmp_path)
    assert rec["pass"]
    assert [r["adc"] for r in rec["cases"][0]["columns"]] == ["north", "south"]


def test_coupled_slice_too_large_is_refused_with_an_estimate(ngspice, tmp_path):
    with pytest.raises(BadInput, match=r"1 ngspice runs of 512 x 16 coupled .* estimated .* min > max_minutes"):
        run_validation(make("rows=512", "cols=16", "conventions=[hold]", "tile.circuit.r_row_ohm=0.15",
                            "max_minutes=1"), tmp_path)
