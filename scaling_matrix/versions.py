"""Which versions of the real NeMo libraries we have a contract with, and what each one speaks.

A *contract* is a library version whose parsers check everything we render for it, in CI (the
contract tier: ``make contract``, ``contract/``). Renderers pick their grammar from the contract of
the profile's version; ``plan`` refuses a version without one, naming the supported ones. Pure data.

Add a version by adding a :class:`Contract` to :data:`CONTRACTS` *and* a lock file
``contract/requirements-<lock>.txt`` with a checker that passes. Megatron-Bridge cannot be installed on
Python 3.11 (every release since 0.4.0 needs Python >=3.12,<3.13; 0.3.x needs CUDA-only packages), so its
contract is a *pinned copy* of its launch surface extracted from the release's source
(``scaling_matrix/data/megatron_bridge-<release>.json``, ``scripts/megatron_bridge_fields.py``): ``lock``
names that file and every rendered command is checked against it (``scaling_matrix/bridge_surface.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

from scaling_matrix.errors import ConfigError

if TYPE_CHECKING:
    from scaling_matrix.config.models import ProfileSpec

#: NeMo 2 ``llm`` collection: deprecated in nemo-toolkit 2.6 (containers 25.11+), gone in 3.0.
LLM_DEPRECATED_TOOLKIT = (2, 6)
LLM_DEPRECATED_CONTAINER = (25, 11)
LLM_DEPRECATION = ("NeMo 2's `llm` collection (nemo llm finetune/import) is deprecated since "
                   "nemo-toolkit 2.6 (containers 25.11+) and absent from nemo-toolkit 3.0; its "
                   "functionality moved to Megatron-Bridge")
#: container -> nemo-toolkit line, for messages (reference/nemo-real.md: 25.07 ~ 2.4, 25.09 ~ 2.5, 25.11 ~ 2.6).
CONTAINER_TOOLKIT = {(25, 7): "2.4", (25, 9): "2.5", (25, 11): "2.6"}


@dataclass(frozen=True)
class Contract:
    """One library version we render for, verified against its real parsers by the contract tier."""

    workload: str          # 'nemo2' (nemo llm …) | 'automodel' | 'megatron_bridge'
    version: str           # what a profile writes: '25.07' (container), '0.7', '0.5'
    release: str           # the exact release the contract venv installs (or the pinned tag): '2.4.1', '0.5.0'
    library: str           # the packages the contract venv installs, for messages
    grammar: str           # which renderer grammar speaks it
    lock: str              # contract/requirements-<lock>.txt, or scaling_matrix/data/<lock>.json (pinned)
    #: models (matrix model names) whose experts this release can shard (expert parallelism, EP > 1)
    ep_models: frozenset[str] = frozenset({"mixtral_8x7b"})


CONTRACTS: dict[str, dict[str, Contract]] = {
    "nemo2": {"25.07": Contract("nemo2", "25.07", "2.4.1", "nemo-toolkit 2.4.1 + nemo_run 0.4.0 + megatron-core "
                                "0.13.1", "nemo-run-cli", "nemo2")},
    # 0.7.0 has no AutoModel MoE implementation of Mixtral: the HF MixtralForCausalLM cannot take
    # distributed.ep_size > 1 ("Expert parallelism … requires a MoE model"; the contract tier checks it
    # against AutoModel's own capability registry).
    "automodel": {"0.7": Contract("automodel", "0.7", "0.7.0", "nemo-automodel 0.7.0", "automodel-recipe",
                                  "automodel", ep_models=frozenset())},
    # Megatron-Bridge 0.5.0 = NeMo Framework 26.06 container (Megatron-Bridge docs/releases/software-versions.md
    # at v0.5.0). No Mixtral bridge or recipe in this release: no EP models.
    "megatron_bridge": {"0.5": Contract("megatron_bridge", "0.5", "0.5.0", "megatron-bridge 0.5.0 (NeMo "
                                        "Framework 26.06; launch surface pinned from tag v0.5.0)",
                                        "megatron-bridge-0.5", "megatron_bridge-0.5.0", ep_models=frozenset())},
}
DEFAULT_VERSION = {"nemo2": "25.07", "automodel": "0.7", "megatron_bridge": "0.5"}
#: profile workload -> (contract table key, profile field holding its version)
PROFILE_VERSION_FIELD = {"nemo": ("nemo2", "nemo_version"), "megatron_bridge": ("megatron_bridge",
                                                                               "megatron_bridge_version")}


def version_text(value: Any) -> Any:
    """Accept a YAML number for a version field (``nemo_version: 25.07`` loads as a float)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return f"{value:.2f}" if value >= 20 else repr(value)  # 25.1 came from 25.10
    if isinstance(value, int):
        return str(value)
    return value


_VERSION = re.compile(r"\d{1,4}(\.\d{1,4}){0,2}")


def _check_version(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise PydanticCustomError("invalid_value", "is not a version number",
                                  {"fix": "write it like \"25.07\" (NeMo container), \"2.4.1\" (nemo-toolkit) "
                                          "or \"0.7\" (nemo-automodel)"})
    return value


#: A version field: digits and dots only (so messages may show it); YAML numbers accepted (25.07).
VersionText = Annotated[str, BeforeValidator(version_text), Strict(), AfterValidator(_check_version)]


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def normalize(workload: str, version: str) -> str:
    """Return the contract key a profile version maps to: '2.4.1' -> '25.07', '0.7.0' -> '0.7'."""
    parts = _parts(version)
    if workload == "nemo2" and parts[:1] == (2,):  # a nemo-toolkit version
        for container, toolkit in CONTAINER_TOOLKIT.items():
            if parts[:2] == _parts(toolkit):
                return f"{container[0]}.{container[1]:02d}"
        return version
    if workload == "nemo2" and len(parts) >= 2:
        return f"{parts[0]}.{parts[1]:02d}"
    return ".".join(str(p) for p in parts[:2]) if len(parts) >= 2 else version


def supported(workload: str) -> str:
    """Return the contracted versions of ``workload`` for messages, e.g. "25.07 (nemo-toolkit 2.4.1 …)"."""
    table = CONTRACTS.get(workload, {})
    return ", ".join(f"{v} ({c.library})" for v, c in table.items()) or "none yet"


def contract_for(workload: str, version: str | None) -> Contract | None:
    """Return the contract of ``workload`` at ``version`` (None: the default), or None if we have none."""
    key = normalize(workload, version) if version else DEFAULT_VERSION.get(workload, "")
    return CONTRACTS.get(workload, {}).get(key)


def past_llm_deprecation(version: str) -> bool:
    """Return True when NeMo ``version`` (container or nemo-toolkit) is past the llm deprecation."""
    parts = _parts(version)
    if parts[:1] == (2,) or parts[:1] == (3,):
        return parts[:2] >= LLM_DEPRECATED_TOOLKIT
    return len(parts) >= 2 and parts[:2] >= LLM_DEPRECATED_CONTAINER


def version_problems(workload: str, version: str | None, field: str) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) for rendering ``workload`` at profile ``field`` = ``version``."""
    warnings: list[str] = []
    if workload == "nemo2" and version and past_llm_deprecation(version):
        warnings.append(f"{field} {version}: {LLM_DEPRECATION}; for such containers use a profile with "
                        f"workload: megatron_bridge (supported: {supported('megatron_bridge')})")
    if contract_for(workload, version) is None:
        return [f"{field} {version!s}: no contract for this version (supported: {supported(workload)})"], warnings
    return [], warnings


def profile_version_problems(profile: ProfileSpec) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) about the library version of ``profile`` ('nemo' and 'megatron_bridge'
    workloads have one; the tiny engine has none)."""
    if profile.workload not in PROFILE_VERSION_FIELD:
        return [], []
    table, field = PROFILE_VERSION_FIELD[profile.workload]
    return version_problems(table, getattr(profile, field), f"profile {profile.name}.{field}")


def check_profile_version(profile: ProfileSpec) -> Contract | None:
    """Return the contract ``profile`` renders for (None for the tiny workload).

    Raises:
        ConfigError: no contract for the profile's ``nemo_version`` / ``megatron_bridge_version``,
            naming the supported ones.
    """
    errors, _ = profile_version_problems(profile)
    if errors:
        field, problem = errors[0].split(": ", 1)
        raise ConfigError(field, problem, f"set {field.rsplit('.', 1)[-1]} to a supported version, or add a "
                          "contract for yours first (contract/README.md)")
    if profile.workload not in PROFILE_VERSION_FIELD:
        return None
    table, field = PROFILE_VERSION_FIELD[profile.workload]
    return contract_for(table, getattr(profile, field))
