"""Parallel-layout rules of one cell (Megatron-Core / Lightning, reference/nemo.md §5), each as
(field, problem, concrete fix): the divisor that works, the nearest valid number. Pure.

Dense models get no expert-parallel wording unless the cell itself sets ``ep``/``etp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scaling_matrix.bridge_surface import load_surface, recipe_problem
from scaling_matrix.render.megatron_bridge import recipe_name
from scaling_matrix.versions import contract_for

if TYPE_CHECKING:
    from scaling_matrix.config.models import CellSpec, ModelSpec, ProfileSpec

Rule = tuple[str, str, str]  # (field, problem, fix)


def divisors(n: int, limit: int = 1024) -> list[int]:
    """Return the divisors of ``n`` up to ``limit``, ascending."""
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def _nearest_multiples(value: int, step: int) -> str:
    low = value // step * step
    options = [v for v in (low, low + step) if v > 0]
    return " or ".join(str(v) for v in dict.fromkeys(options))


def _layout_rules(c: CellSpec, m: ModelSpec) -> list[Rule]:
    out: list[Rule] = []
    world = c.gpus
    if world % (c.tp * c.pp * c.cp):
        ok = divisors(world // (c.pp * c.cp)) if world % (c.pp * c.cp) == 0 else []
        fix = f"use tp in {ok}" if ok else f"use gpus: {_nearest_multiples(world, c.tp * c.pp * c.cp)}"
        out.append(("tp", f"TP·PP·CP ({c.tp}·{c.pp}·{c.cp}) must divide world size {world}", fix))
    if m.family == "moe":
        etp = c.layout.expert_tp
        if world % (etp * c.ep * c.pp):
            ok = [d for d in divisors(m.experts) if world % (etp * d * c.pp) == 0]
            out.append(("ep", f"ETP·EP·PP ({etp}·{c.ep}·{c.pp}) must divide world size {world}", f"use ep in {ok}"))
        if m.experts % c.ep:
            ok = [d for d in divisors(m.experts) if world % d == 0]
            out.append(("ep", f"EP={c.ep} must divide the expert count {m.experts}", f"use ep in {ok}"))
    else:
        if c.ep > 1:
            out.append(("ep", f"EP={c.ep} needs a MoE model; {m.name} is dense", "set ep: 1"))
        if c.etp is not None:
            out.append(("etp", f"etp applies to MoE models only; {m.name} is dense", "remove etp"))
    return out


def _feature_rules(c: CellSpec) -> list[Rule]:
    out: list[Rule] = []
    if c.sp and c.tp == 1:
        out.append(("sp", "sequence parallel (sp: true) requires TP > 1", "set sp: false or tp: 2 or more"))
    if c.ep > 1 and c.tp > 1 and not c.sp:
        out.append(("sp", "EP > 1 with TP > 1 requires sequence parallel", "set sp: true"))
    if c.vp is not None and c.pp == 1:
        out.append(("vp", "virtual pipeline (vp) requires PP > 1", "remove vp or set pp: 2 or more"))
    if c.nodes * c.devices != c.gpus:
        out.append(("nodes", f"world size {c.gpus} must equal nodes {c.nodes} × devices {c.devices}",
                    f"use nodes in {divisors(c.gpus)}"))
    step = c.micro_batch_size * c.dp
    if c.global_batch_size % step:
        out.append(("global_batch_size", f"global batch {c.global_batch_size} must be divisible by micro batch "
                    f"{c.micro_batch_size} × DP {c.dp}", f"use global_batch_size: "
                    f"{_nearest_multiples(c.global_batch_size, step)}"))
    return out


def cell_rules(cell: CellSpec, model: ModelSpec) -> list[Rule]:
    """Return the layout rules ``cell`` breaks on ``model`` (empty when valid)."""
    return _layout_rules(cell, model) + _feature_rules(cell)


def workload_fits(model: ModelSpec, profile: ProfileSpec) -> bool:
    """Return True when ``profile``'s workload can run ``model`` (NeMo models also run on Megatron-Bridge)."""
    return model.workload == profile.workload or (model.workload, profile.workload) == ("nemo", "megatron_bridge")


def release_rules(cell: CellSpec, model: ModelSpec, profile: ProfileSpec) -> list[Rule]:
    """Return what the profile's library release cannot run for ``cell`` (Megatron-Bridge: a recipe for
    the model and method must exist in the pinned release); ``--skip-unsupported`` drops such cells."""
    if profile.workload != "megatron_bridge" or not workload_fits(model, profile):
        return []
    contract = contract_for("megatron_bridge", profile.megatron_bridge_version)
    if contract is None:
        return []  # the version itself is refused first (versions.check_profile_version)
    why = recipe_problem(load_surface(contract.lock), recipe_name(model, cell.peft))
    if why is None:
        return []
    return [("model", f"{why}, so {model.name} cannot run with peft={cell.peft} on this profile",
             "run these cells on a 'nemo' profile (nemo_version 25.07), remove them, or pass --skip-unsupported")]


def profile_rules(cell: CellSpec, model: ModelSpec, profile: ProfileSpec) -> list[Rule]:
    """Return the reasons ``cell`` cannot run on ``profile`` (empty when it can)."""
    out: list[Rule] = []
    if not workload_fits(model, profile):
        out.append(("model", f"model {model.name} needs workload '{model.workload}' but profile "
                    f"'{profile.name}' runs '{profile.workload}'",
                    "pick a profile for this workload (list them with `scaling-matrix presets`)"))
    if cell.devices > profile.gpus_per_node:
        nodes = [n for n in divisors(cell.gpus) if cell.gpus // n <= profile.gpus_per_node][:1]
        fix = f"set nodes: {nodes[0]}" if nodes else f"use at most {profile.gpus_per_node} GPUs per node"
        out.append(("gpus", f"{cell.devices} GPUs per node exceeds the profile's gpus_per_node "
                    f"{profile.gpus_per_node}", fix))
    if cell.gpus > profile.capacity_gpus and profile.launcher == "slurm":
        out.append(("gpus", f"{cell.gpus} GPUs exceeds the profile's capacity_gpus {profile.capacity_gpus}",
                    f"use gpus: {profile.capacity_gpus} or less, or raise capacity_gpus"))
    return out
