"""A cell's parallel layout as one value: where its ranks run and how the model is split. Pure.

``Layout`` is the cell's identity wherever one is needed (cell keys, history series, DB columns,
plot labels, table columns, the ranks a launcher starts), so 1 node x 8 GPUs, 2 nodes x 4 GPUs and
1 x 8 with context parallel 2 are three different cells everywhere, never one.

The slug keeps every key that existed before nodes/CP/ETP/VP were part of it: a single-node cell
without them is ``g8/tp1-pp1-ep1`` as always; the others add ``-n2``, ``-cp2``, ``-etp1``, ``-vp2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import total_ordering
from typing import Any


@total_ordering
@dataclass(frozen=True)
class Layout:
    """Ranks and model split of one cell.

    Attributes:
        nodes: nodes of the job (``trainer.num_nodes``, ``--nodes``).
        devices: GPUs (local: rank processes) per node (``trainer.devices``, ``--ntasks-per-node``).
        tp, pp, cp, ep: tensor, pipeline, context and expert parallel sizes.
        etp: expert tensor parallel size as configured (None: Megatron's default, ``tp``).
        vp: virtual pipeline size (None: not interleaved).
        sp: sequence parallel.
    """

    nodes: int = 1
    devices: int = 1
    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    etp: int | None = None
    vp: int | None = None
    sp: bool = False

    @property
    def world(self) -> int:
        """Return the number of ranks (GPUs): nodes x devices."""
        return self.nodes * self.devices

    @property
    def dp(self) -> int:
        """Return the data-parallel size: world / (TP x PP x CP) (EP does not reduce DP)."""
        return max(1, self.world // (self.tp * self.pp * self.cp))

    @property
    def expert_tp(self) -> int:
        """Return the expert tensor parallel size in effect (``etp``, else ``tp``): the one rule."""
        return self.tp if self.etp is None else self.etp

    def slug(self) -> str:
        """Return the layout part of a cell key, e.g. ``g8/tp1-pp1-ep1`` or ``g8-n2/tp2-pp1-ep1-cp2-sp``."""
        size = f"g{self.world}" + (f"-n{self.nodes}" if self.nodes > 1 else "")
        split = f"tp{self.tp}-pp{self.pp}-ep{self.ep}"
        split += f"-cp{self.cp}" if self.cp > 1 else ""
        split += f"-etp{self.etp}" if self.etp is not None else ""
        split += f"-vp{self.vp}" if self.vp is not None else ""
        split += "-sp" if self.sp else ""
        return f"{size}/{split}"

    def label(self) -> str:
        """Return a short human label, e.g. ``2x4 GPUs tp1 pp1 ep1`` (plots, tables)."""
        where = f"{self.nodes}x{self.devices} GPUs" if self.nodes > 1 else f"{self.world} GPUs"
        extra = [f"cp{self.cp}"] if self.cp > 1 else []
        extra += [f"etp{self.etp}"] if self.etp is not None else []
        extra += [f"vp{self.vp}"] if self.vp is not None else []
        extra += ["sp"] if self.sp else []
        return " ".join([where, f"tp{self.tp} pp{self.pp} ep{self.ep}", *extra])

    def columns(self) -> dict[str, Any]:
        """Return the stored columns of this layout (``gpus`` is the world size)."""
        return {"gpus": self.world, "nodes": self.nodes, "devices_per_node": self.devices, "tp": self.tp,
                "pp": self.pp, "cp": self.cp, "ep": self.ep, "etp": self.etp, "vp": self.vp, "sp": self.sp,
                "dp": self.dp}

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> Layout:
        """Return the layout of a stored row (rows older than these columns: one node, no CP/ETP/VP)."""
        nodes = int(row.get("nodes") or 1)
        devices = row.get("devices_per_node") or int(row["gpus"]) // nodes
        return cls(nodes, int(devices), int(row.get("tp") or 1), int(row.get("pp") or 1),
                   int(row.get("cp") or 1), int(row.get("ep") or 1), _opt(row.get("etp")), _opt(row.get("vp")),
                   bool(row.get("sp")))

    def _order(self) -> tuple[int, ...]:
        return (self.world, self.nodes, self.tp, self.pp, self.cp, self.ep, self.etp or 0, self.vp or 0,
                int(self.sp))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return self._order() < other._order()


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


__all__ = ["Layout"]
