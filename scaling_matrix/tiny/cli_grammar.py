"""Pure parsing of the NeMo 2 / NeMo-Run command grammar into validated pydantic models (no torch, no I/O).

``llm import model=<factory> source=<src> [output_path=<dir>] [overwrite=True] --yes``
``llm finetune --factory <factory>[(peft_scheme='lora'|'none')] --yes key=value ...``
"""

from __future__ import annotations

import ast
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaling_matrix.tiny.layout import check_batch_divisible

PeftName = Literal["lora", "none"]
__all__ = ["FinetuneArgs", "GrammarError", "ImportArgs", "check_batch_divisible", "parse_finetune", "parse_import"]


class GrammarError(ValueError):
    """Raised for any command line the tiny engine rejects; ``str()`` is the one-line message."""


class ImportArgs(BaseModel):
    """Parsed ``llm import`` arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factory: str
    source: str
    output_path: str | None = None
    overwrite: bool = False
    yes: bool = False
    verbose: bool = False


class FinetuneArgs(BaseModel):
    """Parsed ``llm finetune`` arguments (tiny-engine defaults where the key is absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factory: str
    peft_scheme: PeftName = "lora"
    yes: bool = False
    dryrun: bool = False
    verbose: bool = False
    name: str | None = None
    devices: int = Field(1, ge=1)
    num_nodes: int = Field(1, ge=1)
    max_steps: int = Field(40, ge=1)
    limit_val_batches: int | float | None = Field(None, ge=0)
    val_check_interval: int = Field(30, ge=1)
    log_every_n_steps: int = Field(1, ge=1)
    warmup_steps: int = Field(5, ge=0)
    min_lr: float = Field(0.0, ge=0)
    lr: float | None = Field(None, gt=0)
    global_batch_size: int = Field(8, ge=1)
    micro_batch_size: int = Field(1, ge=1)
    seq_length: int = Field(128, ge=16, le=2048)
    model_seq_length: int | None = Field(None, ge=16)
    restore_path: str
    explicit_log_dir: str | None = None
    log_dir: str | None = None
    log_name: str | None = None
    peft: PeftName | None = None
    peft_dim: int | None = Field(None, ge=1)
    peft_alpha: int | None = Field(None, ge=1)
    peft_target_modules: list[str] | None = None
    tensor_model_parallel_size: int = Field(1, ge=1)
    expert_model_parallel_size: int = Field(1, ge=1)
    expert_tensor_parallel_size: int | None = Field(None, ge=1)
    sequence_parallel: bool = False

    @property
    def effective_peft(self) -> PeftName:
        """Returns the PEFT actually applied: ``peft=`` if given, else the factory's ``peft_scheme``."""
        return self.peft if self.peft is not None else self.peft_scheme


# dotted NeMo key -> FinetuneArgs field
FINETUNE_KEYS: dict[str, str] = {
    "trainer.devices": "devices",
    "trainer.num_nodes": "num_nodes",
    "trainer.max_steps": "max_steps",
    "trainer.limit_val_batches": "limit_val_batches",
    "trainer.val_check_interval": "val_check_interval",
    "trainer.log_every_n_steps": "log_every_n_steps",
    "optim.lr_scheduler.warmup_steps": "warmup_steps",
    "optim.lr_scheduler.min_lr": "min_lr",
    "optim.config.lr": "lr",
    "data.global_batch_size": "global_batch_size",
    "data.micro_batch_size": "micro_batch_size",
    "data.seq_length": "seq_length",
    "model.config.seq_length": "model_seq_length",
    "resume.restore_config.path": "restore_path",
    "log.explicit_log_dir": "explicit_log_dir",
    "log.log_dir": "log_dir",
    "log.name": "log_name",
    "peft": "peft",
    "peft.dim": "peft_dim",
    "peft.alpha": "peft_alpha",
    "peft.target_modules": "peft_target_modules",
}
# Model-parallel keys the tiny engine implements (dotted key -> field); None means the default.
STRATEGY_KEYS: dict[str, str] = {
    f"trainer.strategy.{k}": k
    for k in ("tensor_model_parallel_size", "expert_model_parallel_size", "expert_tensor_parallel_size",
              "sequence_parallel")
}
# Model-parallel keys accepted only at their "off" value (1, None, False): no pipeline or context parallelism.
PARALLEL_KEYS: frozenset[str] = frozenset(
    "trainer.strategy." + k
    for k in ("pipeline_model_parallel_size", "virtual_pipeline_model_parallel_size", "context_parallel_size")
)
IMPORT_KEYS: dict[str, str] = {"model": "factory", "source": "source", "output_path": "output_path",
                               "overwrite": "overwrite"}
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FACTORY = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\s*(\((?P<args>.*)\))?$")


def parse_value(raw: str) -> Any:
    """Returns the Python value of an override's right-hand side (NeMo-Run literal rules, simplified).

    ``none``/``null`` -> None, ``true``/``false`` (any case) -> bool, integers, floats (``1e-4``),
    ``['a','b']`` -> list (a Python literal, as NeMo-Run requires: a bare ``[a,b]`` is rejected like
    NeMo-Run rejects it), surrounding quotes stripped; anything else stays a string.

    Args:
        raw: Text after the first ``=``.
    """
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text.startswith(("[", "(")) and text.endswith(("]", ")")):
        try:
            return list(ast.literal_eval(text))
        except (ValueError, SyntaxError) as exc:
            raise GrammarError(f"Failed to parse '{text}' as typing.List: list items must be Python "
                               f"literals, e.g. ['linear_qkv','linear_proj']") from exc
    return text


def parse_factory(text: str) -> tuple[str, dict[str, Any]]:
    """Returns ``(name, kwargs)`` for ``--factory name`` or ``--factory "name(peft_scheme='none')"``.

    Args:
        text: The ``--factory`` value.

    Raises:
        GrammarError: Malformed text or an argument other than ``peft_scheme``.
    """
    match = _FACTORY.match(text.strip())
    if match is None:
        raise GrammarError(f"invalid factory '{text}'")
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (match.group("args") or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() != "peft_scheme":
            raise GrammarError(f"unsupported factory argument '{part}' (the tiny engine accepts peft_scheme only)")
        scheme = parse_value(value)
        kwargs["peft_scheme"] = "none" if scheme is None else str(scheme).lower()
    return match.group("name"), kwargs


def check_parallel(key: str, value: Any, raw: str) -> None:
    """Returns None when a model-parallel override is at its "off" value (1, None, False).

    Args:
        key: Dotted key, one of :data:`PARALLEL_KEYS`.
        value: Parsed value.
        raw: Value text as written, for the message.

    Raises:
        GrammarError: Any other value (``... is not supported by the tiny engine yet (<kind> parallelism)``).
    """
    if value is None or value is False or (type(value) is int and value == 1):
        return
    what = key.rsplit(".", 1)[-1].removesuffix("_parallel_size").removesuffix("_model").replace("_", " ")
    raise GrammarError(f"{key}={raw} is not supported by the tiny engine yet ({what} parallelism)")


def _split_flags(argv: list[str], flags_with_value: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Returns (flag values, key=value tokens); boolean flags map to True."""
    bool_flags = {"--yes": "yes", "--no-confirm": "yes", "--dryrun": "dryrun", "-v": "verbose", "--verbose": "verbose"}
    flags: dict[str, Any] = {}
    rest: list[str] = []
    tokens = iter(argv)
    for tok in tokens:
        head, eq, tail = tok.partition("=")
        if tok in bool_flags:
            flags[bool_flags[tok]] = True
        elif head in flags_with_value:
            value = tail if eq else next(tokens, None)
            if value is None:
                raise GrammarError(f"option '{head}' needs a value")
            flags[flags_with_value[head]] = value
        elif tok.startswith("-"):
            raise GrammarError(f"unknown option '{tok}'")
        elif not eq:
            raise GrammarError(f"unexpected argument '{tok}' (expected key=value)")
        else:
            rest.append(tok)
    return flags, rest


def _validate(model: type[BaseModel], data: dict[str, Any], keys: dict[str, str]) -> Any:
    """Returns ``model(**data)``, turning pydantic errors into one-line GrammarErrors named by dotted key."""
    try:
        return model(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        key = next((k for k, f in keys.items() if f == field), field)
        if err["type"] == "missing":
            raise GrammarError(f"{key} is required") from None
        raise GrammarError(f"invalid value for {key}: {err.get('input')!r} ({err['msg']})") from None


def parse_import(argv: list[str]) -> ImportArgs:
    """Returns the validated arguments of ``llm import`` (``argv`` excludes ``llm import``).

    Args:
        argv: Tokens after ``llm import``.

    Raises:
        GrammarError: Unknown key or option, malformed or missing value.
    """
    flags, pairs = _split_flags(argv, {})
    data: dict[str, Any] = {k: v for k, v in flags.items() if k in ("yes", "verbose")}
    for tok in pairs:
        key, _, raw = tok.partition("=")
        if key not in IMPORT_KEYS:
            raise GrammarError(f"unknown override '{key}'")
        value = parse_value(raw)
        data[IMPORT_KEYS[key]] = str(value) if key in ("source", "output_path", "model") and value is not None \
            else value
    return _validate(ImportArgs, data, IMPORT_KEYS)


def parse_finetune(argv: list[str]) -> FinetuneArgs:
    """Returns the validated arguments of ``llm finetune`` (``argv`` excludes ``llm finetune``).

    Args:
        argv: Tokens after ``llm finetune``.

    Raises:
        GrammarError: Unknown key (``unknown override '<key>'``), unsupported parallelism, bad value,
            missing ``--factory`` or ``resume.restore_config.path``.
    """
    flags, pairs = _split_flags(argv, {"--factory": "factory", "-f": "factory", "--name": "name", "-n": "name"})
    if "factory" not in flags:
        raise GrammarError("--factory is required (e.g. --factory tiny_llama)")
    name, factory_kwargs = parse_factory(flags.pop("factory"))
    data: dict[str, Any] = {"factory": name, **factory_kwargs, **flags}
    keys = {**FINETUNE_KEYS, **STRATEGY_KEYS, "--factory": "factory"}
    for tok in pairs:
        key, _, raw = tok.partition("=")
        value = parse_value(raw)
        if key in PARALLEL_KEYS:
            check_parallel(key, value, raw)
        elif key in STRATEGY_KEYS:
            if value is not None:
                data[STRATEGY_KEYS[key]] = value
        elif key in FINETUNE_KEYS:
            data[FINETUNE_KEYS[key]] = _coerce(FINETUNE_KEYS[key], value)
        else:
            raise GrammarError(f"unknown override '{key}'")
    return _validate(FinetuneArgs, data, keys)


def _coerce(field: str, value: Any) -> Any:
    """Returns ``value`` adjusted for fields whose CLI spelling differs from the model's type."""
    if field == "peft":
        return "none" if value is None else str(value).lower()
    if field in ("restore_path", "explicit_log_dir", "log_dir", "log_name") and value is not None:
        return str(value)
    if field == "peft_target_modules" and isinstance(value, str):
        return [value]
    if field == "peft_target_modules" and isinstance(value, list):
        return [str(v) for v in value]
    return value
