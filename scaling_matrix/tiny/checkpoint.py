"""Base-model checkpoints of the tiny engine: ``llm import`` writes them, ``llm finetune`` restores them.

Layout of an imported directory::

    <dir>/weights/              config.json, model.safetensors (Hugging Face save_pretrained)
    <dir>/context/model.yaml    factory, model_type, config, seed, source, tokenizer description
    <dir>/context/nemo_tokenizer/tiny_byte_tokenizer.json
    <dir>/context/io.json       completeness marker, written last (sha256 of the weights)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from scaling_matrix.tiny import tokenizer
from scaling_matrix.tiny.factories import FactorySpec, get_factory
from scaling_matrix.tiny.faults import Injector

MARKER_FORMAT = "tiny-nemo-checkpoint"
MARKER_VERSION = 1
SOURCE_PATTERN = re.compile(r"^tiny://seed/(\d+)$")
WEIGHTS_FILE = "model.safetensors"


def parse_source(source: str) -> int:
    """Returns the seed encoded in a ``tiny://seed/<int>`` source.

    Args:
        source: The ``source=`` value of ``llm import``.

    Raises:
        ValueError: Any other form (``hf://...`` cannot be served offline by the tiny engine).
    """
    match = SOURCE_PATTERN.match(source.strip())
    if match is None:
        raise ValueError(f"unsupported source '{source}': the tiny engine imports only tiny://seed/<int>")
    return int(match.group(1))


def default_output_path(factory: str, seed: int, env: dict[str, str] | None = None) -> Path:
    """Returns NeMo's default import location, ``$NEMO_MODELS_CACHE/tiny/<factory>-seed<seed>``.

    Args:
        factory: Factory name.
        seed: Seed of the source.
        env: Environment (default ``os.environ``); ``NEMO_MODELS_CACHE`` defaults to ``$NEMO_HOME/models`` and
            ``NEMO_HOME`` to ``~/.cache/nemo``.
    """
    env = dict(os.environ) if env is None else env
    home = Path(env.get("NEMO_HOME") or Path.home() / ".cache" / "nemo")
    cache = Path(env.get("NEMO_MODELS_CACHE") or home / "models")
    return cache / "tiny" / f"{factory}-seed{seed}"


def _sha256(path: Path) -> str:
    """Returns the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_marker(path: str | Path) -> dict[str, Any] | None:
    """Returns the parsed ``context/io.json`` marker, or None when absent or unreadable.

    Args:
        path: The imported directory.
    """
    marker = Path(path) / "context" / "io.json"
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_imported(path: str | Path) -> bool:
    """Returns True when ``path`` holds a complete tiny-engine import (marker written and weights present).

    Args:
        path: The directory given as ``output_path`` to ``llm import``.
    """
    root = Path(path)
    marker = read_marker(root)
    if marker is None or marker.get("format") != MARKER_FORMAT:
        return False
    needed = [root / "weights" / "config.json", root / "weights" / WEIGHTS_FILE, root / "context" / "model.yaml"]
    return all(p.is_file() for p in needed)


def quiet_transformers() -> None:
    """Returns None after silencing transformers' progress bars and info/warning logs (NeMo prints neither)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def build_model(spec: FactorySpec, seed: int) -> Any:
    """Returns a freshly initialised model of the factory, identical for identical ``(spec, seed)``.

    Args:
        spec: The factory.
        seed: Seed for the random initialisation.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    quiet_transformers()
    config = AutoConfig.for_model(spec.model_type, **dict(spec.config))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.to(torch.float32)


def import_checkpoint(factory: str, source: str, output_path: str | Path | None, overwrite: bool,
                      faults: Injector | None = None) -> Path:
    """Returns the directory of the written (or reused cached) checkpoint.

    Args:
        factory: Factory name (``model=``).
        source: ``tiny://seed/<int>``.
        output_path: Target directory; None for :func:`default_output_path` (reused silently when complete).
        overwrite: Replace an existing ``output_path``.
        faults: the injected fault (test tooling, ``faults.py``): fires after the weights, before ``io.json``.

    Raises:
        FileExistsError: ``output_path`` exists and ``overwrite`` is False (NeMo's message).
    """
    spec = get_factory(factory)
    seed = parse_source(source)
    if output_path is None:
        out = default_output_path(factory, seed)
        if is_imported(out) and not overwrite:
            return out
    else:
        out = Path(output_path)
        if out.exists() and not overwrite:
            raise FileExistsError(f"Output path {out} exists. Use overwrite=True to force overwrite.")
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    _write_checkpoint(out, spec, seed, source, faults or Injector(None))
    return out


def _write_checkpoint(out: Path, spec: FactorySpec, seed: int, source: str, faults: Injector) -> None:
    """Writes weights, context files and, last, the ``io.json`` marker into ``out``."""
    model = build_model(spec, seed)
    weights = out / "weights"
    model.save_pretrained(weights)
    faults.at_import()
    context = out / "context"
    (context / "nemo_tokenizer").mkdir(parents=True, exist_ok=True)
    tok = tokenizer.describe()
    (context / "nemo_tokenizer" / tokenizer.TOKENIZER_FILE).write_text(json.dumps(tok, indent=2), encoding="utf-8")
    model_yaml = {
        "factory": spec.name,
        "model_type": spec.model_type,
        "config": dict(spec.config),
        "seed": seed,
        "source": source,
        "tokenizer": tok,
    }
    (context / "model.yaml").write_text(yaml.safe_dump(model_yaml, sort_keys=False), encoding="utf-8")
    marker = {
        "format": MARKER_FORMAT,
        "version": MARKER_VERSION,
        "factory": spec.name,
        "seed": seed,
        "source": source,
        "weights": f"weights/{WEIGHTS_FILE}",
        "weights_sha256": _sha256(weights / WEIGHTS_FILE),
    }
    tmp = context / "io.json.tmp"
    tmp.write_text(json.dumps(marker, indent=2), encoding="utf-8")
    os.replace(tmp, context / "io.json")


def read_model_yaml(path: str | Path) -> dict[str, Any]:
    """Returns the parsed ``context/model.yaml`` of an imported checkpoint.

    Args:
        path: The imported directory.
    """
    return yaml.safe_load((Path(path) / "context" / "model.yaml").read_text(encoding="utf-8"))


def load_base_model(path: str | Path, factory: str | None = None) -> Any:
    """Returns the imported base model (float32, train mode off) from ``<path>/weights``.

    Args:
        path: The imported directory (``resume.restore_config.path``).
        factory: When given, the factory the checkpoint must have been imported for.

    Raises:
        FileNotFoundError: ``path`` is not a complete import.
        ValueError: The checkpoint belongs to another factory.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if not is_imported(path):
        raise FileNotFoundError(f"no complete tiny checkpoint at {path} (run 'llm import' first)")
    imported_for = (read_marker(path) or {}).get("factory")
    if factory is not None and imported_for != factory:
        raise ValueError(f"checkpoint {path} was imported for factory '{imported_for}', not '{factory}'")
    quiet_transformers()
    model = AutoModelForCausalLM.from_pretrained(Path(path) / "weights", dtype=torch.float32)
    model.eval()
    return model


def tree_lines(path: str | Path) -> list[str]:
    """Returns an indented listing of ``path`` (like the tree NeMo prints after an import).

    Args:
        path: Directory to list.
    """
    root = Path(path)
    lines = [str(root)]
    for item in sorted(root.rglob("*")):
        depth = len(item.relative_to(root).parts)
        lines.append("    " * depth + item.name + ("/" if item.is_dir() else ""))
    return lines
