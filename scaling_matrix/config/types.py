"""Strict field types for every value that reaches a command line, a path or an sbatch directive.

Identifiers are checked by pattern (no leading ``-``, no whitespace, control characters or shell
metacharacters); free-form values (paths, notes) may hold spaces and quotes, are quoted once at the
one quoting place (``render/shell.py``), and still may not hold control characters or secrets.
Numbers are strict (``true`` is not 1), finite and bounded. Errors carry a ``fix`` and never the value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, AllowInfNan, Field, Strict
from pydantic_core import PydanticCustomError

from scaling_matrix.config.secrets import SECRET_FIX, secret_kind
from scaling_matrix.safe_text import has_unsafe_chars, printable


def invalid(problem: str, fix: str, loc: str | None = None) -> PydanticCustomError:
    """Return the validation error of one problem (``loc`` overrides where it is reported)."""
    ctx: dict[str, Any] = {"fix": fix}
    if loc:
        ctx["loc"] = loc
    return PydanticCustomError("invalid_value", problem.replace("{", "(").replace("}", ")"), ctx)


def suggest(name: str, known: Iterable[str]) -> str:
    """Return a fix for an unknown key: the nearest known one, else the list of known keys."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"rename it to '{close[0]}' or remove it" if close else f"remove it (allowed: {', '.join(sorted(known))})"


def _free_form(value: str, allowed: str, max_len: int) -> str:
    if len(value) > max_len:
        raise invalid(f"is longer than {max_len} characters", f"shorten it to {max_len} characters")
    if has_unsafe_chars(value):
        raise invalid("contains a control, escape or invisible (bidi) character", f"use {allowed}")
    if kind := secret_kind(value):
        raise invalid(f"looks like {kind}", SECRET_FIX)
    return value


def word(pattern: str, allowed: str, max_len: int = 128, option: bool = False) -> Any:
    """Return a strict ``str`` type matching ``pattern`` (``allowed`` describes it in the fix); ``option``: the
    value is itself a long option (``--key=value``), so a leading ``--`` is what ``pattern`` asks for."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not value:
            raise invalid("is empty", f"use {allowed}")
        _free_form(value, allowed, max_len)
        if value[0] == "-" and not option:
            raise invalid("starts with '-', so a program would read it as an option", f"use {allowed}")
        if not regex.fullmatch(value):
            raise invalid("contains characters that are not allowed here (whitespace, quotes or shell "
                          "metacharacters such as ; | & $ ` < >)", f"use {allowed}")
        return value

    return Annotated[str, Strict(), AfterValidator(check)]


def _abs_path(value: str) -> str:
    allowed = "an absolute path such as /data/models/llama"
    _free_form(value, allowed, 4096)
    if not value.startswith("/"):
        raise invalid("is not an absolute path", f"use {allowed}")
    if ".." in value.split("/"):
        raise invalid("contains a '..' component", "write the path without '..'")
    return value


def _note(value: str) -> str:
    if len(value) > 2000:
        raise invalid("is longer than 2000 characters", "shorten it")
    if kind := secret_kind(value):
        raise invalid(f"looks like {kind}", SECRET_FIX)
    return printable(value)


HF_SOURCE = re.compile(r"hf://(?:[A-Za-z0-9][A-Za-z0-9_.-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*")
TINY_SOURCE = re.compile(r"tiny://seed/[0-9]{1,10}")
SOURCE_FIX = "use hf://<org>/<repo>, tiny://seed/<integer> or an absolute path"
#: The source of a ``sleep`` workload's model: nothing to import (orchestration benchmarks only).
NO_SOURCE = "none"


def _source(value: str) -> str:
    if value == NO_SOURCE:
        return value
    if value.startswith("/"):
        return _abs_path(value)
    _free_form(value, SOURCE_FIX, 512)
    if HF_SOURCE.fullmatch(value) and ".." not in value and "--" not in value:
        return value
    if TINY_SOURCE.fullmatch(value):
        return value
    scheme = value.split("://", 1)[0] if "://" in value else None
    if scheme in ("hf", "tiny"):
        raise invalid(f"is not a valid {scheme}:// source (no '..', spaces or extra path parts)", SOURCE_FIX)
    raise invalid("has an unsupported scheme" if scheme else "is neither a URL nor an absolute path", SOURCE_FIX)


BIND_FIX = "use /host/path or /host/path:/container/path[:ro|rw], one mount per entry, without commas"


def _bind(value: str) -> str:
    _free_form(value, BIND_FIX, 4096)
    parts = value.split(":")
    if "," in value or not 1 <= len(parts) <= 3 or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise invalid("is not a single bind mount", BIND_FIX)
    for part in parts[:2]:
        if not part.startswith("/") or ".." in part.split("/"):
            raise invalid("has a mount path that is not absolute or contains '..'", BIND_FIX)
    return value


IMAGE_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@#+-]*")
IMAGE_FIX = "use an absolute .sif path or a reference such as docker://nvcr.io/nvidia/nemo:25.07"


def _image(value: str) -> str:
    if value.startswith("/"):
        return _abs_path(value)
    _free_form(value, IMAGE_FIX, 512)
    if not IMAGE_WORD.fullmatch(value):
        raise invalid("is neither an absolute path nor an image reference", IMAGE_FIX)
    return value


def _argv_word(value: str) -> str:
    return _free_form(value, "printable text", 4096)


def _argv_prefix(value: list[str]) -> list[str]:
    if not value:
        raise invalid("is empty", "list the program and its arguments, e.g. [/opt/bin/nemo]")
    if value[0].startswith("-") or not value[0]:
        raise invalid("starts with an option instead of a program", "put the program first, e.g. [python3, -m, x]")
    return value


def _checked(check: Callable[[str], str]) -> Any:
    return Annotated[str, Strict(), AfterValidator(check)]


def count(lo: int, hi: int) -> Any:
    """Return a strict, bounded ``int`` type (``true``/``2.5``/``"4"`` rejected)."""
    return Annotated[int, Strict(), Field(ge=lo, le=hi)]


def real(hi: float, gt: float | None = None, ge: float | None = None) -> Any:
    """Return a strict, finite, bounded ``float`` type (integers accepted, ``.inf``/``.nan``/booleans not)."""
    return Annotated[float, Strict(), AllowInfNan(False), Field(gt=gt, ge=ge, le=hi)]


Flag = Annotated[bool, Strict()]
ModelKey = word(r"[a-z0-9_]+", "lower-case letters, digits and '_' (e.g. llama31_8b)", 64)
Factory = word(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", "a recipe name such as llama31_8b")
Label = word(r"[A-Za-z0-9][A-Za-z0-9._:+-]*", "letters, digits and . _ : + - (e.g. gpu, a100_q)")
JobName = word(r"[A-Za-z0-9][A-Za-z0-9._-]*", "letters, digits and . _ - (e.g. l-lo-4g)", 64)
Constraint = word(r"[A-Za-z0-9_\[(][A-Za-z0-9_.,:&|*\[\]()+-]*",
                  "a SLURM feature expression such as a100,8gpus or a100&ib", 256)
ModuleName = word(r"[A-Za-z0-9_][A-Za-z0-9_./+:-]*", "a module name such as cuda/12.4.1")
EnvName = word(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name such as HF_HOME")
LoraTarget = word(r"[A-Za-z_*][A-Za-z0-9_.*]*", "module names such as linear_qkv or linear_proj")
SbatchArg = word(r"--[a-z][a-z0-9-]*(?:=[A-Za-z0-9_.,:=@%/+*-]+)?", "--option or --option=value", 512, option=True)
TimeLimit = word(r"(?:\d+-)?\d{1,2}:\d{2}:\d{2}|\d+", "a time such as 01:00:00, 1-00:00:00 or minutes", 16)
MemSize = word(r"\d+[KMGT]?", "a size such as 256G or 64000M", 16)
AbsPath = _checked(_abs_path)
Source = _checked(_source)
Bind = _checked(_bind)
Image = _checked(_image)
ArgvWord = _checked(_argv_word)
ArgvPrefix = Annotated[list[ArgvWord], AfterValidator(_argv_prefix)]
EnvValue = _checked(lambda v: _free_form(v, "printable text without secrets", 4096))
Note = _checked(_note)
