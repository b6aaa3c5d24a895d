"""CLI-side input checks and the one way the CLI prints user-supplied text.

``say`` prints verbatim (the consoles have markup off), with control/escape/bidi characters made
visible and secret-looking substrings redacted; flag checks raise ConfigError naming the flag.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

from scaling_matrix.config.secrets import redact, shown
from scaling_matrix.errors import ConfigError
from scaling_matrix.paths import check_run_id
from scaling_matrix.safe_text import printable

AUTOMODEL_VERSION = re.compile(r"\d{1,3}\.\d{1,3}(?:\.\d{1,3})?(?:[.+-]?[A-Za-z0-9]{1,16})?")


def say(console: Console, text: str, style: str = "") -> None:
    """Print ``text`` as plain text in ``style``: never markup, never raw control characters or secrets."""
    safe = "\n".join(printable(redact(line)) for line in text.split("\n"))
    console.print(Text(safe, style=style), soft_wrap=True)


def check_automodel_version(version: str) -> str:
    """Return ``version`` when it looks like an AutoModel release number; ConfigError naming ``--version``."""
    if not AUTOMODEL_VERSION.fullmatch(version):
        raise ConfigError("--version", "is not a version number", "use the installed nemo_automodel version, "
                          "e.g. --version 0.7.0 (see `pip show nemo_automodel`)")
    return version


def recent_run_ids(limit: int = 5) -> list[str]:
    """Return the newest ``limit`` run ids of the results database (empty when it does not exist yet)."""
    from sqlalchemy.engine import make_url

    from blocks.results_db import resolve_results_url
    from scaling_matrix.adapters.store import ResultsStore

    url = resolve_results_url()
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        if not Path(parsed.database).is_file():
            return []  # no database yet: do not create one just to say the run is unknown
    return [r["run_id"] for r in ResultsStore(url).runs(limit)]


def check_resume(run_id: str, flag: str = "--resume") -> str:
    """Return ``run_id`` when it is a valid id of a stored run; ConfigError naming ``flag`` and
    listing recent runs otherwise (a typo must not silently start a new run)."""
    check_run_id(run_id, flag)
    recent = recent_run_ids(50)
    if run_id in recent:
        return run_id
    from scaling_matrix.adapters.store import ResultsStore
    from blocks.results_db import resolve_results_url

    if recent and ResultsStore(resolve_results_url()).run(run_id) is not None:
        return run_id
    listed = ", ".join(recent[:5])
    other = "leave out --resume to start a new run" if flag == "--resume" else "see `scaling-matrix runs`"
    fix = f"pass one of the recent runs ({listed}) or {other}" if recent else \
        f"{other} (the results database has no runs yet)"
    raise ConfigError(flag, f"no run '{shown(run_id)}' in the results database", fix)
