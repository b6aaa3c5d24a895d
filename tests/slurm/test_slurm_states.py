"""SlurmState: parsing of every spelling SLURM prints, and the terminal/active split."""

from __future__ import annotations

import pytest

from scaling_matrix.slurm import SlurmState

REQUIRED = ["PENDING", "RUNNING", "COMPLETING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
            "NODE_FAIL", "PREEMPTED", "REQUEUED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
            "SUSPENDED", "CONFIGURING", "RESIZING", "REVOKED", "SPECIAL_EXIT", "UNKNOWN"]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_state_exists_and_round_trips(name: str) -> None:
    assert SlurmState.parse(name) is SlurmState[name]
    assert SlurmState.parse(name.lower()) is SlurmState[name]


@pytest.mark.parametrize(("text", "expected"), [
    ("CANCELLED by 0", SlurmState.CANCELLED),      # sacct, job row after scancel
    ("CANCELLED+", SlurmState.CANCELLED),          # sacct with narrow columns
    ("  TIMEOUT \n", SlurmState.TIMEOUT),
    ("PD", SlurmState.PENDING), ("R", SlurmState.RUNNING), ("CG", SlurmState.COMPLETING),
    ("CD", SlurmState.COMPLETED), ("CA", SlurmState.CANCELLED), ("NF", SlurmState.NODE_FAIL),
    ("OOM", SlurmState.OUT_OF_MEMORY), ("TO", SlurmState.TIMEOUT),
    ("", SlurmState.UNKNOWN), (None, SlurmState.UNKNOWN), ("BRAND_NEW_STATE", SlurmState.UNKNOWN),
])
def test_parse_decorations_abbreviations_and_unknowns(text: str | None, expected: SlurmState) -> None:
    assert SlurmState.parse(text) is expected


def test_terminal_and_active_are_disjoint_and_cover_everything_but_unknown() -> None:
    for state in SlurmState:
        assert not (state.is_terminal and state.is_active), state
        assert state.is_terminal or state.is_active or state is SlurmState.UNKNOWN, state
    assert not SlurmState.UNKNOWN.is_terminal and not SlurmState.UNKNOWN.is_active


@pytest.mark.parametrize("name", ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                                  "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"])
def test_final_states_are_terminal(name: str) -> None:
    assert SlurmState[name].is_terminal


@pytest.mark.parametrize("name", ["PENDING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED",
                                  "CONFIGURING", "RESIZING"])
def test_live_states_are_active(name: str) -> None:
    assert SlurmState[name].is_active


def test_public_surface_is_pinned() -> None:
    import scaling_matrix.slurm as pkg

    assert sorted(pkg.__all__) == sorted([
        "SACCT_FIELDS", "SQUEUE_FORMAT", "JobStatus", "SlurmState", "job_ids_with_comment", "parse_duration",
        "parse_exit_code", "parse_jobcomp", "parse_key_values", "parse_sacct", "parse_sbatch_job_id",
        "parse_sbatch_test_only", "parse_scontrol_job", "parse_scontrol_jobs", "parse_squeue",
    ])
    for name in pkg.__all__:
        assert hasattr(pkg, name), name


def test_pure_code_imports_no_subprocess_or_prefect() -> None:
    import ast
    from pathlib import Path

    import scaling_matrix.slurm as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"subprocess", "prefect", "os", "shutil"}, (path.name, names)
