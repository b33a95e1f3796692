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

from aimc_runner.circuit.spice import ngspice_available
from aimc_runner.validate import ValidateConfig, run_validation
from aimc_runner.validate_sources import BadInput
from conftest import CONF_DIR, GLUE_FIXTURES

SMALL = ["rows=6", "cols=3", "row_probes=3", "workers=2"]


@pytest.fixture(scope="module")
def ngspice():
    if not ngspice_available():
        if os.environ.get("CI"):
            pytest.fail("ngspice is required in CI: install the Debian package `ngspice`")
        pytest.skip("ngspice not installed (Debian package `ngspice`)")


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


def test_float_netlist_that_stops_on_timestep_too_small_is_rerun_relaxed(tmp_path):
    # A stand-in for ngspice that fails like ngspice-39 does on some 512-row float netlists at reltol=1e-12.
    fake = tmp_path / "fake-ngspice"
    fake.write_text('#!/bin/sh\nif grep -q "^.options reltol=1e-10$" "$2"; then echo "q0 = 2.5e-15"; '
                    'else echo "doAnalyses: TRAN:  Timestep too small; time = 6.9e-08"; fi\n')
    fake.chmod(0o755)
    from aimc_runner.validate import _Job, _spice_job
    from aimc_runner.config import CircuitConfig, IdleRows

    job = _Job(("col", 0, 0), np.ones((3, 1)), np.zeros((3, 1)), np.array([2, -1, 0]), IdleRows.float, 1.0,
               tmp_path / "col0.cir")
    q, wall, relaxed = _spice_job(job, CircuitConfig(), str(fake))
    assert relaxed and q == pytest.approx(2.5) and wall >= 0
    assert (tmp_path / "col0.relaxed.cir").read_text().count(".options") == 2


def test_disagreement_beyond_the_tolerance_fails_after_writing_the_record(ngspice, tmp_path):
    from aimc_runner.validate import ValidationFailed

    with pytest.raises(ValidationFailed, match="disagree beyond tolerance"):
        run_validation(make("rows=3", "cols=1", "row_probes=0", "r_wire_ohm=[300.0]", "tolerance=1e-30"), tmp_path)
    rec = json.loads((tmp_path / "validate.json").read_text())
    assert rec["pass"] is False and "FAIL" in (tmp_path / "validate.txt").read_text()


def test_row_wire_resistance_is_refused():
    with pytest.raises(Exception, match="r_row_ohm"):
        make("tile.circuit.r_row_ohm=0.5")
