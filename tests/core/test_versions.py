"""Version awareness: which NeMo releases we render for, refusals naming the supported ones, the
`llm` deprecation warning, and the CLI paths users take (plan / automodel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scaling_matrix import versions
from scaling_matrix.cli import app
from scaling_matrix.config.loading import load_matrix, load_profile, parse_model
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import ConfigError
from scaling_matrix.matrix import plan_cells

runner = CliRunner()
IBEX = yaml.safe_load((Path(__file__).parents[2] / "scaling_matrix/presets/profiles/ibex.yaml").read_text())


def profile_with(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "prof.yaml"
    path.write_text(yaml.safe_dump({**IBEX, **fields}))
    return path


@pytest.mark.parametrize("written,key", [("25.07", "25.07"), (25.07, "25.07"), ("2.4.1", "25.07"),
                                         ("25.7", "25.07"), (25.1, "25.10")])
def test_nemo_versions_normalise_yaml_numbers_and_toolkit_versions(written: object, key: str) -> None:
    prof = parse_model(ProfileSpec, {**IBEX, "nemo_version": written}, "test")
    assert versions.normalize("nemo2", prof.nemo_version) == key


def test_contracts_and_deprecation_table() -> None:
    assert versions.contract_for("nemo2", None).release == "2.4.1"
    assert versions.contract_for("nemo2", "25.09") is None
    assert [versions.past_llm_deprecation(v) for v in ("25.07", "25.09", "25.11", "26.02", "2.5.3", "2.6.2",
                                                       "3.0.0")] == [False, False, True, True, False, True, True]
    assert "megatron_bridge" in versions.CONTRACTS  # a later issue adds its contract here


def test_plan_refuses_uncontracted_version_naming_supported(tmp_path: Path) -> None:
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--profile", str(profile_with(tmp_path,
                                                                                             nemo_version="25.09"))])
    assert res.exit_code == 2
    assert "nemo_version 25.09" in res.output and "25.07 (nemo-toolkit 2.4.1" in res.output
    assert "Traceback" not in res.output


def test_plan_warns_past_llm_deprecation(tmp_path: Path) -> None:
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--profile", str(profile_with(tmp_path,
                                                                                             nemo_version="25.11"))])
    assert res.exit_code == 2 and "warning:" in res.output and "deprecated since nemo-toolkit 2.6" in res.output


def test_deprecation_warning_with_a_contracted_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a 25.11 contract exists, plan accepts it and still warns (table designed for that)."""
    contract = versions.Contract("nemo2", "25.11", "2.6.2", "nemo-toolkit 2.6.2", "nemo-run-cli", "nemo2-26")
    monkeypatch.setitem(versions.CONTRACTS["nemo2"], "25.11", contract)
    prof = parse_model(ProfileSpec, {**IBEX, "nemo_version": "25.11"}, "test")
    errors, warnings = versions.profile_version_problems(prof)
    assert not errors and len(warnings) == 1 and "Megatron-Bridge" in warnings[0]
    assert len(plan_cells(load_matrix("workshop"), prof)) == 12


def test_tiny_workload_has_no_nemo_version_check() -> None:
    assert versions.check_profile_version(load_profile("local")) is None


def test_plan_json_has_every_argv_and_the_contract() -> None:
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["nemo_contract"]["version"] == "25.07" and len(doc["cells"]) == 12 and len(doc["imports"]) == 2
    assert all(c["argv"][:3] == ["nemo", "llm", "finetune"] for c in doc["cells"])


def test_automodel_cli_rejects_ep_cells_naming_version_and_field(tmp_path: Path) -> None:
    res = runner.invoke(app, ["automodel", "--matrix", "workshop", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.output.count("nemo-automodel 0.7.0") == 5
    assert "tp1-pp1-ep2.ep:" in res.output and not (tmp_path / "o").exists()  # nothing written
    res = runner.invoke(app, ["automodel", "--matrix", "workshop", "--out", str(tmp_path / "o"),
                              "--skip-unsupported"])
    assert res.exit_code == 0 and len(list((tmp_path / "o").glob("*.yaml"))) == 7
    res = runner.invoke(app, ["automodel", "--version", "0.5.0", "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and "--version 0.5.0" in res.output and "0.7 (nemo-automodel 0.7.0)" in res.output


@pytest.mark.parametrize("value", [["25.07"], True, "25.07; touch /tmp/x", "latest", "", "1" * 30])
def test_bad_version_value_is_a_config_error_without_the_input(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_model(ProfileSpec, {**IBEX, "nemo_version": value}, "profile ibex")
    assert "nemo_version" in str(err.value) and "touch" not in str(err.value) and "latest" not in str(err.value)
