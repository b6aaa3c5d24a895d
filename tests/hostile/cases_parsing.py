"""Hostile corpus, part 2: YAML parsing hardening and messages (key path, problem, concrete fix)."""

from __future__ import annotations

from tests.hostile.harness import MOE_MODEL, PLAN, Case, gpu_profile, local_profile, nemo_matrix, tiny_matrix

CELL = "{model: llama31_8b, track: data_parallel, gpus: 2}"
HEAD = "name: hostile\nmodels:\n  llama31_8b: {factory: llama31_8b, family: dense, source: hf://meta-llama/Llama-3.1-8B, workload: nemo}\n"
GOOD = HEAD + f"cells:\n  - {CELL}\n"
BOMB = "".join([f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10)])


def _yaml(name: str, text: str | bytes, fix: str = "", **kw: object) -> Case:
    return Case(name, "YAML parsing", matrix=text, field=kw.pop("field", "m.yaml"), fix=fix, **kw)


PARSING = [
    _yaml("duplicate-top-level-key", GOOD + "name: other\n", fix="keep one entry per key"),
    _yaml("duplicate-key-in-a-cell", HEAD + "cells:\n  - {model: llama31_8b, track: data_parallel, gpus: 2, gpus: 8}\n",
          fix="keep one entry per key"),
    Case("duplicate-key-in-profile-slurm", "YAML parsing",
         profile="name: p\nlauncher: slurm\nworkload: nemo\ndevice: gpu\ncapacity_gpus: 8\n"
                 "slurm:\n  partition: a\n  partition: b\n", field="p.yaml", fix="keep one entry per key"),
    _yaml("five-megabyte-file", GOOD + "# " + "x" * (5 * 2**20) + "\n", fix="right file"),
    _yaml("just-over-the-size-cap", GOOD + "# " + "y" * (257 * 1024) + "\n", fix="right file"),
    _yaml("alias-bomb", "name: bomb\nl0: &l0 [lol]\n" + BOMB, fix="fewer or smaller aliases", payload="lol, lol"),
    _yaml("recursive-alias", GOOD + "loop: &a [*a]\n", fix="remove the recursive alias"),
    _yaml("nested-lists-2000-deep", GOOD + "deep: " + "[" * 2000 + "]" * 2000 + "\n", fix="flatten"),
    _yaml("nested-mappings-40-deep", GOOD + "deep: " + "{a: " * 40 + "1" + "}" * 40 + "\n", fix="flatten"),
    _yaml("latin-1-bytes", (GOOD + "description: caf\xe9\n").encode("latin-1"), fix="save the file as UTF-8"),
    _yaml("utf-16-file", GOOD.encode("utf-16"), fix="save the file as UTF-8"),
    _yaml("binary-garbage", bytes(range(256)) * 4, fix="UTF-8"),
    _yaml("nul-byte-in-text", GOOD.encode() + b"description: a\x00b\n", fix="fix the YAML syntax"),
    _yaml("top-level-list", f"- {CELL}\n", fix="key: value lines"),
    _yaml("top-level-scalar", "just some text\n", fix="key: value lines"),
    _yaml("empty-file", "", fix="start the file with 'name: ...'"),
    _yaml("comments-only", "# nothing here\n# at all\n", fix="start the file with 'name: ...'"),
    _yaml("python-object-tag", "name: !!python/object/apply:os.system ['touch {canary}']\n", fix="fix the YAML syntax"),
    _yaml("tab-indentation", HEAD + "cells:\n\t- " + CELL + "\n", fix="fix the YAML syntax"),
    _yaml("unterminated-quote", 'name: "hostile\n', fix="fix the YAML syntax"),
    _yaml("five-thousand-digit-number", GOOD + "repeats: " + "1" * 5000 + "\n", fix="fix the YAML syntax"),
    _yaml("binary-tag-as-name", GOOD.replace("name: hostile", "name: !!binary aG9zdGlsZQ=="), field="m.yaml: name",
          fix="write it as text"),
    Case("date-as-time-limit", "YAML parsing",
         profile="name: p\nlauncher: slurm\nworkload: nemo\ndevice: gpu\ncapacity_gpus: 8\nslurm: {time_limit: 2024-01-01}\n",
         field="slurm.time_limit", fix="write it as text"),
    _yaml("set-as-models", "name: x\nmodels: !!set {a, b}\ncells: [" + CELL + "]\n", field="models", fix="key: value"),
    Case("profile-is-a-list", "YAML parsing", profile="- launcher: local\n", field="p.yaml", fix="key: value lines"),
    Case("matrix-path-is-a-folder", "YAML parsing", ("plan", "--matrix", "{tmp}/adir.yaml"), setup="matrix_dir",
         field="--matrix", fix="existing YAML file"),
    _yaml("cells-is-a-number", HEAD + "cells: 5\n", field="cells", fix="write [a, b]"),
    Case("slurm-is-a-number", "YAML parsing", profile={**gpu_profile(), "slurm": 5}, field="slurm",
         fix="key: value lines"),
    _yaml("corrected-is-a-number", nemo_matrix({"corrected": 5}), field="cells[0].corrected", fix="corrected: {"),
    _yaml("corrected-is-a-list", nemo_matrix({"corrected": ["peft"]}), field="cells[0].corrected"),
    _yaml("corrected-has-an-unknown-key", nemo_matrix({"corrected": {"gpu": 4}}), field="cells[0].corrected.gpu",
          fix="rename it to 'gpus'"),
    _yaml("corrected-has-a-bad-value", nemo_matrix({"corrected": {"peft": "dora"}}), field="cells[0].corrected.peft",
          fix="'lora' or 'none'"),
    _yaml("no-models", nemo_matrix(models={}), field="models", fix="add entries"),
]


def _msg(name: str, cell: dict[str, object], field: str, fix: str, **kw: object) -> Case:
    matrix = kw.pop("matrix", None) or nemo_matrix(cell)
    return Case(name, "messages", matrix=matrix, field=field, fix=fix, **kw)


MOE = nemo_matrix(models={"mixtral_8x7b": MOE_MODEL}) | {"cells": []}
DENSE_ONLY = ("EP", "ETP", "expert")
REPEATS = ("run", "--dry-run", "--matrix", "{matrix}", "--profile", "{profile}", "--repeats")

MESSAGES = [
    Case("repeats-zero", "messages", (*REPEATS, "0"), tiny_matrix(), local_profile(), field="--repeats",
         fix="--repeats 1"),
    Case("repeats-too-many", "messages", (*REPEATS, "99"), tiny_matrix(), local_profile(), field="--repeats",
         fix="--repeats 10"),
    Case("repeats-negative", "messages", (*REPEATS, "-3"), tiny_matrix(), local_profile(), field="--repeats",
         fix="--repeats 1"),
    Case("variant-unknown", "messages", (*PLAN, "--variant", "bogus"), field="--variant", fix="--variant corrected"),
    _msg("global-batch-not-divisible", {"gpus": 4, "global_batch_size": 6}, "cells[0].global_batch_size",
         "global_batch_size: 4 or 8"),
    _msg("dense-tp-not-dividing", {"gpus": 4, "tp": 3, "track": "model_parallel"}, "cells[0].tp", "tp in [1, 2, 4]",
         absent=DENSE_ONLY),
    _msg("moe-ep-not-dividing-experts", {}, "cells[0].ep", "ep in [1, 2]",
         matrix=MOE | {"cells": [{"model": "mixtral_8x7b", "track": "data_parallel", "gpus": 6, "ep": 3}]}),
    _msg("gpus-per-node-exceeded", {"gpus": 16}, "cells[0].gpus", "set nodes: 2"),
    _msg("nodes-not-dividing-gpus", {"gpus": 4, "nodes": 3}, "cells[0].nodes", "nodes in [1, 2, 4]"),
    _msg("sp-without-tp", {"sp": True}, "cells[0].sp", "sp: false", absent=DENSE_ONLY),
    _msg("fractional-gpus", {"gpus": 2.5}, "cells[0].gpus", "use 2 or 3"),
    _msg("zero-steps", {"max_steps": 0}, "cells[0].max_steps", "set max_steps to 1 or more"),
    _msg("typo-gpu", {"gpu": 4}, "cells[0].gpu", "rename it to 'gpus'"),
    Case("typo-in-profile-slurm", "messages", profile=gpu_profile({"partiton": "gpu"}), field="slurm.partiton",
         fix="rename it to 'partition'"),
    _msg("three-problems-three-lines", {"gpus": 0, "tp": True, "peft": "dora"}, "cells[0].gpus", "1 or more",
         lines=3),
    _msg("problems-in-two-cells-two-lines", {}, "cells[1].tp", "tp in [1, 2, 4]", lines=2, matrix=nemo_matrix(
        {"gpus": 4, "global_batch_size": 6}) | {"cells": [
            {"model": "llama31_8b", "track": "data_parallel", "gpus": 4, "global_batch_size": 6},
            {"model": "llama31_8b", "track": "model_parallel", "peft": "none", "gpus": 4, "tp": 3}]}),
    _msg("unknown-key-in-defaults", {}, "defaults.gpu", "rename it to 'gpus'",
         matrix=nemo_matrix(defaults={"gpu": 2})),
    _msg("unknown-key-in-axes", {}, "axes[0].gpu", "rename it to 'gpus'",
         matrix={**nemo_matrix(), "cells": [], "axes": [{"model": ["llama31_8b"], "gpu": [2]}]}),
    _msg("axes-cell-batch-not-divisible", {}, "axes[0].global_batch_size", "global_batch_size: 8 or 16",
         matrix={**nemo_matrix(), "cells": [], "axes": [{"model": ["llama31_8b"], "track": ["data_parallel"],
                                                        "gpus": [4, 8], "global_batch_size": [12]}]}),
    _msg("ep-on-a-dense-model", {"ep": 2}, "cells[0].ep", "set ep: 1"),
    _msg("capacity-exceeded", {"gpus": 32, "nodes": 4}, "cells[0].gpus", "use gpus: 16 or less"),
    Case("workload-mismatch", "messages", matrix=tiny_matrix(), field="cells[0].model", fix="pick a profile"),
]
