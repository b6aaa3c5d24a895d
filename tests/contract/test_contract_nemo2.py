"""Contract: every `nemo llm finetune` / `nemo llm import` argv that `scaling-matrix plan` renders for
every preset matrix (both variants) on every NeMo profile is accepted by nemo-toolkit 2.4.1 + NeMo-Run
0.4.0 (contract/check_nemo2.py), with one real `--dryrun` of each per model, and negative controls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import COVERAGE, contract_venv, nemo_presets, nemo_profiles, run_checker, scaling_matrix

pytestmark = [pytest.mark.contract, pytest.mark.slow]

MISSPELLED = "trainer.strategy.tensor_model_paralel_size=2"
BARE_LIST = "peft.target_modules=[linear_qkv,linear_proj]"


def rendered(home: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (finetune items, import items) from `scaling-matrix plan --json`, deduplicated by argv."""
    finetune: dict[str, dict[str, Any]] = {}
    imports: dict[str, dict[str, Any]] = {}
    runs = [(m, p, v) for m in nemo_presets() for p in nemo_profiles() for v in ("faithful", "corrected")]
    runs += [(str(COVERAGE["nemo2"]), p, "faithful") for p in nemo_profiles()]
    for matrix, profile, variant in runs:
        proc = scaling_matrix("plan", "--matrix", matrix, "--profile", profile, "--variant", variant, "--json",
                              home=home)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        for cell in doc["cells"]:
            finetune.setdefault(json.dumps(cell["argv"]), {"id": f"{Path(matrix).stem}/{variant}/{cell['key']}",
                                                            "argv": cell["argv"], "model": cell["model"]})
        for imp in doc["imports"]:
            imports.setdefault(json.dumps(imp["argv"]), {"id": f"import/{imp['model']}", "argv": imp["argv"],
                                                          "model": imp["model"]})
    for items in (finetune, imports):  # one real CLI --dryrun per model and verb
        seen: set[str] = set()
        for item in items.values():
            item["dryrun"] = item["model"] not in seen
            seen.add(item["model"])
    return list(finetune.values()), list(imports.values())


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    venv = contract_venv("nemo2")
    work = tmp_path_factory.mktemp("nemo2")
    finetune, imports = rendered(work / "home")
    base = finetune[0]["argv"]
    negatives = [{"id": "neg/misspelled-key", "argv": [*base, MISSPELLED], "dryrun": True},
                 {"id": "neg/bare-list", "argv": [*base, BARE_LIST]},
                 {"id": "neg/import-misspelled", "argv": [*imports[0]["argv"][:-1], "overwrit=True", "--yes"]}]
    rc, report = run_checker(venv, "check_nemo2.py", {"finetune": finetune + negatives[:2],
                                                      "import": imports + negatives[2:]}, work)
    return {"rc": rc, "report": report, "finetune": finetune, "imports": imports}


def failures(checked: dict[str, Any]) -> dict[str, list[str]]:
    return {f["id"]: f["errors"] for f in checked["report"]["failures"]}


def test_every_rendered_argv_is_accepted_by_nemo_run(checked: dict[str, Any]) -> None:
    got = failures(checked)
    assert {k: v for k, v in got.items() if not k.startswith("neg/")} == {}
    assert checked["report"]["checked"] == len(checked["finetune"]) + len(checked["imports"]) + 3
    models = {i["model"] for i in checked["finetune"]}
    assert models == {"llama31_8b", "mixtral_8x7b"} and len(checked["finetune"]) >= 12 + 2 + 3


def test_real_cli_dryrun_per_model(checked: dict[str, Any]) -> None:
    runs = {r["id"]: r for r in checked["report"]["dryruns"]}
    for items in (checked["finetune"], checked["imports"]):
        for item in (i for i in items if i["dryrun"]):
            assert runs[item["id"]]["ok"], runs[item["id"]]
    assert sum(i["dryrun"] for i in checked["finetune"] + checked["imports"]) == 4  # 2 models x 2 verbs


def test_negative_controls_fail_the_checker(checked: dict[str, Any]) -> None:
    got = failures(checked)
    assert checked["rc"] == 1
    assert any("tensor_model_paralel_size" in e and "**kwargs" in e for e in got["neg/misspelled-key"])
    assert any("as typing.List" in e for e in got["neg/bare-list"])
    assert any("overwrit" in e for e in got["neg/import-misspelled"])
    # NeMo's own --dryrun accepts the misspelled key (it vanishes into MegatronStrategy(**kwargs)):
    # the signature check above is what catches it.
    assert {r["id"]: r["ok"] for r in checked["report"]["dryruns"]}["neg/misspelled-key"] is True
