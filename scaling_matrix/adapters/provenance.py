"""Provenance of a run: container image digest, NVIDIA driver, software versions.

Image digests of local ``.sif`` files are sha256 of the file, cached by (path, size, mtime) under
``$SCALING_HOME/cache/image-digests.json`` because images are many GB.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from scaling_matrix.adapters.runner import CommandRunner, SubprocessRunner
from scaling_matrix.config.models import ContainerSettings
from scaling_matrix.paths import scaling_home


def file_sha256(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_sha256(path: Path, cache_file: Path | None = None) -> str:
    """Return the sha256 of ``path``, reusing a cached value while size and mtime are unchanged."""
    cache_file = cache_file or scaling_home() / "cache" / "image-digests.json"
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    cache: dict[str, str] = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    if key not in cache:
        cache[key] = file_sha256(path)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, indent=1))
    return cache[key]


def image_provenance(container: ContainerSettings) -> dict[str, Any]:
    """Return ``container_runtime``, ``container_image`` and ``container_digest`` (sha256:… or the tag)."""
    out: dict[str, Any] = {"container_runtime": container.runtime, "container_image": container.image}
    if not container.image:
        return out
    path = Path(container.image)
    if path.is_file():
        out["container_digest"] = "sha256:" + cached_sha256(path)
    elif "@sha256:" in container.image:
        out["container_digest"] = container.image.split("@", 1)[1]
    else:
        out["container_digest"] = f"tag:{container.image}"  # registry reference: the tag is what we know
    return out


def driver_provenance(runner: CommandRunner | None = None) -> dict[str, Any]:
    """Return ``driver_version`` from nvidia-smi on this host (empty when there is no GPU)."""
    res = (runner or SubprocessRunner()).run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], timeout_s=20)
    if not res.ok or not res.stdout.strip():
        return {}
    return {"driver_version": res.stdout.split()[0]}
