"""``squeue -t all -O ...`` lines (recorded on the project's SLURM 22.05) read as scontrol would report them."""

from __future__ import annotations

from datetime import datetime

import pytest

from scaling_matrix.errors import SchedulerParseError
from scaling_matrix.slurm import SlurmState
from scaling_matrix.slurm.squeue import SQUEUE_ALL_FORMAT, parse_squeue_all, squeue_all_argv, wait_status

# JobID|State|exit_code|TimeUsed|NodeList|Partition|SubmitTime|StartTime|EndTime|Requeue|Reason|: the first four
# recorded from real jobs; the PENDING and RUNNING lines written in the same format
RECORDED = """\
853|FAILED|256|0:01|vm|gpu|2026-12-05T19:42:10|2026-12-05T19:42:10|2026-12-05T19:42:11|0|NonZeroExitCode|
854|FAILED|34304|0:01|vm|gpu|2026-12-05T19:42:13|2026-12-05T19:42:13|2026-12-05T19:42:14|0|NonZeroExitCode|
855|COMPLETED|0|0:05|vm|gpu|2026-12-05T19:42:16|2026-12-05T19:42:16|2026-12-05T19:42:21|0|None|
445|TIMEOUT|15|0:22|vm|gpu|2026-12-05T18:44:03|2026-12-05T18:44:04|2026-12-05T18:44:26|1|TimeLimit|
860|PENDING|0|0:00||gpu|2026-12-05T19:50:01|N/A|N/A|0|QOSGrpCpuLimit|
861|RUNNING|0|1:02:03|vm-2|gpu|2026-12-05T19:50:01|2026-12-05T19:50:02|2026-12-05T20:20:02|0|None|
"""


def test_recorded_lines_give_state_exit_status_signal_and_times() -> None:
    got = parse_squeue_all(RECORDED)
    assert {k: (v.state, v.exit_code, v.signal) for k, v in got.items()} == {
        "853": (SlurmState.FAILED, 1, 0), "854": (SlurmState.FAILED, 134, 0), "855": (SlurmState.COMPLETED, 0, 0),
        "445": (SlurmState.TIMEOUT, 0, 15), "860": (SlurmState.PENDING, 0, 0), "861": (SlurmState.RUNNING, 0, 0)}
    done = got["855"]
    assert (done.start_time, done.end_time, done.elapsed_s, done.node_list, done.partition) == (
        datetime(2026, 12, 5, 19, 42, 16), datetime(2026, 12, 5, 19, 42, 21), 5.0, "vm", "gpu")
    assert got["860"].reason == "QOSGrpCpuLimit" and got["860"].start_time is None and got["860"].node_list is None
    assert got["861"].end_time is None and got["861"].elapsed_s == 3723  # a running job's end is a projection
    assert got["445"].requeue is True and got["855"].requeue is False
    assert all(s.source == "squeue" for s in got.values())


def test_wait_status_is_read_as_status_and_signal() -> None:
    assert [wait_status(x) for x in ("0", "256", "35072", "9", "15", "", "N/A")] == [
        "0:0", "1:0", "137:0", "0:9", "0:15", "", ""]


def test_a_reason_with_a_bar_stays_whole_and_a_short_line_is_refused() -> None:
    line = "7|PENDING|0|0:00||gpu|2026-12-05T19:50:01|N/A|N/A|0|a|b|\n"
    assert parse_squeue_all(line)["7"].reason == "a|b"
    with pytest.raises(SchedulerParseError):
        parse_squeue_all("7|PENDING|0|\n")


def test_argv_asks_every_state_of_the_ids_unpadded() -> None:
    argv = squeue_all_argv(["1", "2"])
    assert argv == ["squeue", "-h", "-t", "all", "-O", SQUEUE_ALL_FORMAT, "-j", "1,2"]
    assert all(field.endswith(":|") for field in SQUEUE_ALL_FORMAT.split(","))
