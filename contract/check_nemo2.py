"""Contract checker for NeMo 2 (`nemo llm …`): runs INSIDE the nemo2 contract venv, never the project's.

Input: a JSON file ``{"finetune": [{"id", "argv", "dryrun"?}], "import": [{"id", "argv", "dryrun"?}]}``
with argv exactly as ``scaling-matrix plan --json`` renders them (``nemo llm finetune --factory … key=value``).
For each argv it uses the library's own code:

1. the resolution ``nemo llm finetune`` performs: NeMo-Run's ``LazyEntrypoint(llm.finetune,
   factory=…)`` with the overrides, i.e. ``parse_factory`` → the real ``llm.<factory>.finetune_recipe()``
   and ``parse_cli_args`` on it (type errors such as a bare ``[a,b]`` list fail here);
2. every dotted key walked through the resolved fiddle tree and checked against the *explicit*
   signature of its target (``fdl.get_callable``): a key that would vanish into ``**kwargs``
   (``MegatronStrategy(**kwargs)`` accepts anything, so ``--dryrun`` alone proves nothing) fails;
3. for items with ``"dryrun": true``, the real CLI: ``nemo <argv…> --dryrun`` must exit 0 and print
   NeMo-Run's "Dry run for task" line.

Prints a JSON report; exit status 1 when anything failed (2: bad input).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FLAGS_WITH_VALUE = {"--factory", "-f", "--name", "-n", "--yaml"}
BOOL_FLAGS = {"--yes", "-y", "--no-confirm", "--dryrun", "--detach", "--tail-logs", "-v", "--verbose"}
TASK_LINE = "Dry run for task nemo.collections.llm.api:"


def split_argv(argv: list[str]) -> tuple[str, dict[str, str | bool], list[str]]:
    """Return (verb, flags, overrides) of ``<prefix…> llm <verb> [flags] key=value …``."""
    if "llm" not in argv:
        raise ValueError(f"no 'llm' subcommand in {argv[:4]}")
    rest = argv[argv.index("llm") + 1:]
    if not rest:
        raise ValueError("no verb after 'llm'")
    verb, tokens = rest[0], rest[1:]
    flags: dict[str, str | bool] = {}
    overrides: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        head = tok.split("=", 1)[0]
        if head in FLAGS_WITH_VALUE:
            if "=" in tok:
                flags[head] = tok.split("=", 1)[1]
            else:
                if i + 1 >= len(tokens):
                    raise ValueError(f"flag {tok} needs a value")
                flags[head] = tokens[i + 1]
                i += 1
        elif tok in BOOL_FLAGS:
            flags[tok] = True
        elif tok.startswith("-"):
            raise ValueError(f"unknown flag {tok!r} (NeMo-Run flags: {sorted(FLAGS_WITH_VALUE | BOOL_FLAGS)})")
        elif "=" not in tok:
            raise ValueError(f"override {tok!r} is not key=value")
        else:
            overrides.append(tok)
        i += 1
    return verb, flags, overrides


def explicit_parameter(fn: Any, name: str) -> str | None:
    """Return None if ``name`` is an explicit parameter of ``fn``, else why not."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        return f"cannot read the signature of {fn!r}: {exc}"
    params = sig.parameters
    if len(params) == 2 and inspect.isclass(fn) and all(
            p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()):
        params = inspect.signature(fn.__init__).parameters  # same fallback as NeMo-Run
    where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    param = params.get(name)
    if param is not None and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return f"'{name}' is not an explicit parameter of {where}: it would vanish into **kwargs"
    return f"{where} has no parameter '{name}'"


def check_keys(root: Any, overrides: list[str]) -> list[str]:
    """Return one error per override whose dotted key is not an explicit parameter along the tree."""
    import fiddle as fdl

    errors = []
    for override in overrides:
        key = override.split("=", 1)[0].rstrip("+-*")
        node, walked = root, []
        for name in key.split("."):
            if not isinstance(node, fdl.Buildable):
                errors.append(f"{key}: {'.'.join(walked)} is a {type(node).__name__}, not a configurable object")
                break
            problem = explicit_parameter(fdl.get_callable(node), name)
            if problem:
                errors.append(f"{key}: {problem}")
                break
            walked.append(name)
            node = getattr(node, name, None)
    return errors


def resolve_finetune(flags: dict[str, str | bool], overrides: list[str]) -> Any:
    """Return the Partial ``nemo llm finetune`` builds (NeMo-Run's own entrypoint resolution)."""
    from nemo.collections import llm
    from nemo_run.lazy import LazyEntrypoint

    factory = flags.get("--factory") or flags.get("-f")
    if not isinstance(factory, str):
        raise ValueError("no --factory: the recipe (e.g. --factory llama31_8b) is required")
    entry = LazyEntrypoint(llm.finetune, factory=factory)
    entry._add_overwrite(*overrides)
    return entry.resolve()


def resolve_import(overrides: list[str]) -> Any:
    """Return the Partial ``nemo llm import`` builds: ``parse_cli_args(llm.import_ckpt, overrides)``."""
    from nemo.collections import llm
    from nemo_run.cli.cli_parser import parse_cli_args

    return parse_cli_args(llm.import_ckpt, overrides)


def check_one(kind: str, argv: list[str]) -> list[str]:
    """Return the contract violations of one rendered argv (empty: accepted)."""
    try:
        verb, flags, overrides = split_argv(argv)
    except ValueError as exc:
        return [f"argv: {exc}"]
    expected = "finetune" if kind == "finetune" else "import"
    if verb != expected:
        return [f"argv: verb {verb!r}, expected {expected!r}"]
    if kind == "finetune" and not (flags.get("--yes") or flags.get("-y")):
        return ["argv: no --yes: every srun rank would block on NeMo-Run's 'Continue?' prompt"]
    try:
        root = resolve_finetune(flags, overrides) if kind == "finetune" else resolve_import(overrides)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a contract violation
        return [f"parse: {type(exc).__name__}: {exc}"]
    return check_keys(root, overrides)


def dryrun(argv: list[str], nemo: str, timeout: int = 600) -> dict[str, Any]:
    """Run the real CLI with ``--dryrun``; return {ok, seconds, rc, tail}."""
    cmd = [nemo, *argv[argv.index("llm"):], "--dryrun"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/tmp",
                          env={**os.environ, "COLUMNS": "200"}, check=False)
    out = proc.stdout + proc.stderr
    ok = proc.returncode == 0 and TASK_LINE in out and "Unexpected error" not in out
    return {"ok": ok, "seconds": round(time.monotonic() - t0, 1), "rc": proc.returncode,
            "tail": "" if ok else out[-1500:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path, help="JSON file of rendered argv")
    ap.add_argument("--no-dryrun", action="store_true", help="skip the real CLI --dryrun runs")
    args = ap.parse_args()
    try:
        data = json.loads(args.input.read_text())
    except (OSError, ValueError) as exc:
        print(f"bad input {args.input}: {exc}", file=sys.stderr)
        return 2
    nemo = str(Path(sys.executable).with_name("nemo"))
    report: dict[str, Any] = {"checked": 0, "failures": [], "dryruns": []}
    for kind in ("finetune", "import"):
        for item in data.get(kind, []):
            report["checked"] += 1
            errors = check_one(kind, item["argv"])
            if errors:
                report["failures"].append({"id": item["id"], "kind": kind, "errors": errors})
            if item.get("dryrun") and not args.no_dryrun:
                result = dryrun(item["argv"], nemo)
                report["dryruns"].append({"id": item["id"], "kind": kind, **result})
                if not result["ok"]:
                    report["failures"].append({"id": item["id"], "kind": kind,
                                               "errors": [f"dryrun: exit {result['rc']}: {result['tail']}"]})
    print(json.dumps(report, indent=1))
    return 1 if report["failures"] or not report["checked"] else 0


if __name__ == "__main__":
    sys.exit(main())
