"""Command line of the tiny engine: ``python -m scaling_matrix.tiny llm <import|finetune> ...`` (NeMo 2 grammar).

Exit codes: 0 success; 1 for any error, printed as one ``Unexpected error: <msg>`` line on stderr (NeMo-Run);
2 for a missing or unknown sub-command. ``-v`` re-raises errors with their traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from pathlib import Path

from scaling_matrix.tiny.cli_grammar import FinetuneArgs, ImportArgs, parse_finetune, parse_import
from scaling_matrix.tiny.faults import Injector, injector_from_env
from scaling_matrix.tiny.preflight import preflight

USAGE = (
    "usage: python -m scaling_matrix.tiny llm import model=<factory> source=tiny://seed/<int> "
    "[output_path=<dir>] [overwrite=True] --yes\n"
    "       python -m scaling_matrix.tiny llm finetune --factory <factory> --yes "
    "resume.restore_config.path=<dir> [key=value ...]"
)


def confirm(yes: bool, env: dict[str, str] | None = None) -> bool:
    """Returns True when the run may go on: ``--yes``, ``WORLD_SIZE>1`` (as NeMo-Run), or y/yes on stdin.

    Args:
        yes: ``--yes`` was given.
        env: Environment (default ``os.environ``).
    """
    env = dict(os.environ) if env is None else env
    try:
        world = int(env.get("WORLD_SIZE") or 1)
    except ValueError:
        world = 1
    if yes or world > 1:
        return True
    print("Continue? [y/N]: ", end="", flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _run_import(args: ImportArgs) -> int:
    """Returns 0 after ``llm import`` printed ``✓ Checkpoint imported to <dir>`` and the directory tree."""
    from scaling_matrix.tiny.checkpoint import import_checkpoint, tree_lines

    base = Path(args.output_path) if args.output_path else Path.cwd() / "tiny-import"
    faults = injector_from_env(os.environ, _rank(), _rank(), base)  # test tooling: inert unless set
    out = import_checkpoint(args.factory, args.source, args.output_path, args.overwrite, faults=faults)
    print(f"✓ Checkpoint imported to {out}", flush=True)
    for line in tree_lines(out):
        print(line, flush=True)
    return 0


def _rank(name: str = "RANK", slurm: str = "SLURM_PROCID") -> int:
    """Returns this process's rank from the torch or SLURM variables (0 when neither is set or readable)."""
    text = os.environ.get(name) or os.environ.get(slurm) or "0"
    return int(text) if text.isdigit() else 0


def _finetune_faults(args: FinetuneArgs) -> Injector:
    """Returns the fault injector of this rank (``SCALING_TINY_FAULT``; test tooling, inert unless set)."""
    base = Path(args.explicit_log_dir) if args.explicit_log_dir else Path.cwd() / "nemo_experiments"
    return injector_from_env(os.environ, _rank(), _rank("LOCAL_RANK", "SLURM_LOCALID"), base)


def _describe(args: FinetuneArgs) -> None:
    """Prints NeMo-Run's preamble with the resolved arguments (rank 0 only)."""
    if (os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or "0") != "0":
        return
    print("Configuring global options", flush=True)
    print("Dry run for task scaling_matrix.tiny.train:run_finetune", flush=True)
    print("Resolved Arguments", flush=True)
    for key, value in args.model_dump().items():
        print(f"  {key} = {value!r}", flush=True)


def _run_finetune(args: FinetuneArgs) -> int:
    """Returns 0 after ``llm finetune`` (or after the preamble for ``--dryrun``)."""
    _describe(args)
    if args.dryrun:
        return 0
    if not confirm(args.yes):
        print("Aborted.", file=sys.stderr, flush=True)
        return 1
    name = args.name if args.name else None
    if (os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or "0") == "0":
        print(f"Launching {name}...", flush=True)
    faults = _finetune_faults(args)
    faults.at_launch()
    preflight(args, dict(os.environ))  # torch-free: configuration errors surface before the heavy imports
    from scaling_matrix.tiny.train import run_finetune

    return run_finetune(args, dict(os.environ), faults)


def _guarded(action: Callable[[], int], verbose: bool) -> int:
    """Returns ``action()``, or 1 after printing ``Unexpected error: <msg>`` for any exception."""
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - NeMo-Run turns every exception into one line
        if verbose:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"Unexpected error: {message}", file=sys.stderr, flush=True)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Returns the process exit code for ``llm import ...`` / ``llm finetune ...`` (a leading ``nemo`` is ignored).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).
    """
    tokens = list(sys.argv[1:] if argv is None else argv)
    if tokens[:1] == ["nemo"]:
        tokens = tokens[1:]
    if len(tokens) < 2 or tokens[0] != "llm" or tokens[1] not in ("import", "finetune"):
        print(USAGE, file=sys.stderr, flush=True)
        return 2
    rest = tokens[2:]
    verbose = "-v" in rest or "--verbose" in rest
    if tokens[1] == "import":
        def do_import() -> int:
            args = parse_import(rest)
            return _run_import(args) if confirm(args.yes) else 1
        return _guarded(do_import, verbose)
    return _guarded(lambda: _run_finetune(parse_finetune(rest)), verbose)


if __name__ == "__main__":
    sys.exit(main())
