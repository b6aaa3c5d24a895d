"""Hostile corpus, part 3: strict value types, console safety, and accepted-and-quoted free-form values."""

from __future__ import annotations

from typing import Any

from tests.hostile.harness import NEMO_MODEL, PLAN, Case, gpu_profile, nemo_matrix

TOUCH = "touch {canary}"


def _model(name: str, field: str, value: Any, **kw: Any) -> Case:
    models = {"llama31_8b": {**NEMO_MODEL, field: value}}
    return Case(name, kw.pop("klass", "value types"), matrix=nemo_matrix(models=models),
                field=f"models.llama31_8b.{field}", **kw)


def _cell(name: str, field: str, value: Any, **kw: Any) -> Case:
    return Case(name, kw.pop("klass", "value types"), matrix=nemo_matrix({field: value}),
                field=kw.pop("where", f"cells[0].{field}"), **kw)


def _slurm(name: str, field: str, value: Any, **kw: Any) -> Case:
    return Case(name, "value types", profile=gpu_profile({field: value}), field=f"slurm.{field}", **kw)


def _prof(name: str, field: str, value: Any, where: str = "", **kw: Any) -> Case:
    return Case(name, kw.pop("klass", "value types"), profile=gpu_profile(**{field: value}),
                field=where or field, **kw)


def _box(name: str, container: dict[str, Any], field: str, **kw: Any) -> Case:
    return Case(name, "value types", profile=gpu_profile(container=container), field=f"container.{field}", **kw)


SING = {"runtime": "singularity", "image": "/img/nemo.sif"}

VALUES = [
    _model("factory-option-looking", "factory", "--help", fix="recipe name"),
    _model("factory-semicolon", "factory", f"llama31_8b; {TOUCH}", payload=TOUCH),
    _model("factory-command-substitution", "factory", f"$({TOUCH})", payload=TOUCH),
    _model("factory-backticks", "factory", f"`{TOUCH}`", payload=TOUCH),
    _model("factory-newline", "factory", "llama31_8b\n--yes"),
    _model("factory-nul", "factory", "llama31_8b\x00x"),
    Case("model-key-with-path", "value types", matrix=nemo_matrix(models={"../../etc": NEMO_MODEL}), field="models"),
    _cell("job-name-option-looking", "job_name", "--help"),
    _cell("job-name-trailing-newline", "job_name", "l-lo-4g\n"),
    _cell("job-name-with-space", "job_name", "l lo 4g"),
    _slurm("partition-semicolon", "partition", f"gpu; {TOUCH}", payload=TOUCH),
    _slurm("partition-command-substitution", "partition", f"$({TOUCH})", payload=TOUCH),
    _slurm("partition-leading-space", "partition", " gpu"),
    _slurm("partition-option-injection", "partition", f"--wrap={TOUCH}", payload=TOUCH),
    _slurm("account-pipe", "account", f"acct|tee {{canary}}"),
    _slurm("qos-and-and", "qos", f"normal&&{TOUCH}", payload=TOUCH),
    _slurm("reservation-redirect", "reservation", "res>{canary}"),
    _slurm("constraint-semicolon", "constraint", f"a100;{TOUCH}", payload=TOUCH),
    _slurm("constraint-command-substitution", "constraint", "$(id)"),
    _slurm("mem-trailing-newline", "mem", "256G\n"),
    _slurm("time-limit-trailing-newline", "time_limit", "01:00:00\n"),
    _slurm("module-semicolon", "modules", [f"cuda; {TOUCH}"], payload=TOUCH),
    _slurm("module-command-substitution", "modules", [f"$({TOUCH})"], payload=TOUCH),
    _slurm("module-option-looking", "modules", ["--force"]),
    _slurm("sbatch-arg-wrap-command", "extra_sbatch_args", [f"--wrap={TOUCH}"], payload=TOUCH),
    _slurm("sbatch-arg-with-semicolon", "extra_sbatch_args", ["--export=ALL;touch"]),
    _slurm("sbatch-arg-short-form", "extra_sbatch_args", ["-J x"]),
    _box("image-option-looking", {"runtime": "singularity", "image": "--help"}, "image"),
    _box("image-semicolon", {"runtime": "singularity", "image": f"nemo.sif; {TOUCH}"}, "image", payload=TOUCH),
    _box("image-newline", {"runtime": "singularity", "image": "/img/nemo.sif\n"}, "image"),
    _box("bind-with-comma", {**SING, "binds": ["/a:/b,/c:/d"]}, "binds[0]"),
    _box("bind-option-looking", {**SING, "binds": ["--contain"]}, "binds[0]"),
    _box("bind-relative", {**SING, "binds": ["data:/data"]}, "binds[0]"),
    _box("bind-bad-option", {**SING, "binds": ["/a:/b:exec"]}, "binds[0]"),
    _box("bind-climbs-out", {**SING, "binds": ["/data/../../etc:/etc"]}, "binds[0]"),
    _box("passthrough-with-space", {"env_passthrough": ["HF TOKEN"]}, "env_passthrough[0]"),
    _box("passthrough-semicolon", {"env_passthrough": ["A;touch"]}, "env_passthrough[0]"),
    _prof("env-key-with-space", "env", {"A B": "1"}, where="env.A B"),
    _prof("env-key-leading-digit", "env", {"1ABC": "1"}, where="env.1ABC"),
    _prof("env-value-newline", "env", {"X": "1\nexport PWNED=1"}, where="env.X", payload="export PWNED"),
    _prof("env-value-nul", "env", {"X": "a\x00b"}, where="env.X"),
    _prof("env-value-escape", "env", {"X": "\x1b[2J"}, where="env.X"),
    _prof("executable-option-looking", "executable", ["--help"]),
    _prof("executable-newline", "executable", ["nemo\n"], where="executable[0]"),
    _prof("executable-empty", "executable", []),
    _prof("models-dir-relative", "models_dir", "models", fix="absolute path"),
    _prof("models-dir-climbs-out", "models_dir", "/data/../../etc", fix="without '..'"),
    _prof("model-path-relative", "model_paths", {"llama31_8b": "relative/llama"}, where="model_paths.llama31_8b"),
    _prof("model-path-newline", "model_paths", {"llama31_8b": "/data/llama\n--yes"}, where="model_paths.llama31_8b"),
    _prof("model-path-nul", "model_paths", {"llama31_8b": "/data/llama\x00x"}, where="model_paths.llama31_8b"),
    _prof("model-path-bidi", "model_paths", {"llama31_8b": "/data/\u202ellama"}, where="model_paths.llama31_8b"),
    _model("source-file-url", "source", "file:///etc/passwd", fix="hf://<org>/<repo>"),
    _model("source-tiny-traversal", "source", "tiny://../.."),
    _model("source-tiny-seed-traversal", "source", "tiny://seed/../../x"),
    _model("source-http", "source", "http://example.com/model"),
    _model("source-hf-traversal", "source", "hf://org/../../x"),
    _model("source-hf-space", "source", "hf://org/repo name"),
    _model("source-relative-path", "source", "models/llama"),
    _model("source-option-looking", "source", "--help"),
    _model("source-s3", "source", "s3://bucket/llama"),
    _cell("lora-target-with-bracket", "lora_targets", ["linear_qkv", "x]"]),
    _cell("lora-targets-empty", "lora_targets", []),
    _cell("lora-targets-numbers", "lora_targets", [1, 2]),
    _cell("lora-targets-duplicate", "lora_targets", ["linear_qkv", "linear_qkv"]),
    _cell("lora-targets-a-string", "lora_targets", "linear_qkv"),
    _cell("gpus-boolean", "gpus", True, fix="not true/false"),
    _cell("gpus-quoted", "gpus", "2"),
    _cell("steps-1e20", "max_steps", 10**20),
    _cell("steps-infinite", "max_steps", float("inf")),
    _cell("lr-nan", "lr", float("nan")),
    _cell("lr-infinite", "lr", float("inf")),
    _prof("retry-delay-infinite", "retry_delay_s", float("inf")),
    _prof("retry-delay-huge", "retry_delay_s", 1.0e300),
    _slurm("poll-interval-infinite", "poll_interval_s", float("inf")),
    _slurm("poll-interval-zero", "poll_interval_s", 0),
    _prof("capacity-huge", "capacity_gpus", 10**12),
    _prof("timeout-huge", "cell_timeout_s", 10**10),
    _prof("retries-boolean", "retries", True),
    _cell("sp-yes-string", "sp", "yes"),
    _cell("sp-one", "sp", 1),
    _model("gated-string", "gated", "true"),
    _model("params-infinite", "params_b", float("inf")),
    _cell("seq-length-huge", "seq_length", 10**9),
    _prof("gpu-memory-negative", "gpu_memory_gib", -1),
    _box("singularity-without-image", {"runtime": "singularity"}, "image", fix="image: /path/to/nemo_25.07.sif"),
    _box("apptainer-without-image", {"runtime": "apptainer"}, "image"),
    _box("pyxis-without-image", {"runtime": "pyxis"}, "image", fix="nvcr.io#nvidia/nemo:25.07"),
    _model("name-differs-from-key", "name", "mixtral_8x7b", fix="name: llama31_8b"),
    Case("matrix-name-option-looking", "value types", matrix=nemo_matrix(name="--help"), field="m.yaml: name"),
    _cell("nodes-boolean", "nodes", True),
]

ESC, BIDI = "\x1b[31mRED\x1b[0m", "abc\u202edcba"

CONSOLE = [
    _model("factory-with-escape", "factory", "llama\x1b[2J", klass="console"),
    _cell("job-name-with-bidi", "job_name", "l-lo\u202e4g", klass="console"),
    _prof("cluster-with-escape", "cluster", "lab\x1b[31m", klass="console"),
    Case("model-key-with-bidi", "console", matrix=nemo_matrix(models={"llama\u202e": NEMO_MODEL}), field="models"),
    Case("matrix-name-with-escape", "console", matrix=nemo_matrix(name="x\x1b[2J"), field="m.yaml: name"),
    _cell("unknown-key-with-escape", "\x1b[2Jx", 1, klass="console", where="cells[0].\\x1b[2Jx"),
    _cell("unknown-key-with-markup", "[red]boom[/red]", 1, klass="console"),
    Case("matrix-flag-with-markup", "console", ("plan", "--matrix", "[bold]nope"), field="--matrix",
         fix="a path to a YAML file", absent=("'nope'",)),
    Case("report-run-with-markup", "console", ("report", "--run", "[red]x[/red]"), field="[red]x[/red]", code=1),
]

ACCEPT = [
    _cell("note-with-ansi-escape", "note", f"see {ESC}", klass="console", expect="accept", shows=("\\x1b[31mRED",)),
    _cell("note-with-bidi-override", "note", BIDI, klass="console", expect="accept", shows=("abc\\u202edcba",)),
    _cell("note-with-markup", "note", "[bold]not bold[/bold]", klass="console", expect="accept",
          shows=("[bold]not bold[/bold]",)),
    _cell("note-with-closing-tag", "note", "odd [/] tag", klass="console", expect="accept", shows=("odd [/] tag",)),
    _cell("note-with-newline", "note", "line1\nline2", klass="console", expect="accept", shows=("line1\\nline2",)),
    _cell("note-with-link-markup", "note", "[link=file:///etc/passwd]x[/link]", klass="console", expect="accept",
          shows=("[link=file:///etc/passwd]x[/link]",)),
    _cell("lora-targets-brackets-survive", "lora_targets", ["linear_qkv", "linear_proj"], klass="console",
          expect="accept", shows=("target_modules=[", "linear_qkv")),
]

A = "resume.restore_config.path="
for name, path in [("path-with-spaces", "/data/my models/llama 8b"), ("path-with-single-quote", "/data/o'brien/llama"),
                   ("path-with-command-substitution", "/data/$(touch {canary})/llama"),
                   ("path-with-backticks-and-semicolon", "/data/`touch {canary}`;x/llama"),
                   ("path-with-double-quotes", '/data/"quoted" dir/llama')]:
    ACCEPT.append(_prof(name, "model_paths", {"llama31_8b": path}, klass="value types", expect="accept",
                        shell_word=A + path))
ACCEPT += [
    _prof("executable-with-spaces", "executable", ["/opt/my tools/nemo"], klass="value types", expect="accept",
          shell_word="/opt/my tools/nemo"),
    _box("image-path-with-spaces", {"runtime": "singularity", "image": "/images/nemo 25.07.sif"}, "image",
         expect="accept"),
    _box("bind-with-spaces", {**SING, "binds": ["/data/a b:/data/a b:ro"]}, "binds", expect="accept"),
    _prof("env-value-with-shell-text", "env", {"NOTE_DIR": "/tmp/$HOME; `x`"}, klass="value types", expect="accept"),
    _slurm("constraint-feature-expression", "constraint", "a100&ib|h100", expect="accept"),
    _slurm("sbatch-arg-long-option", "extra_sbatch_args", ["--nodelist=node-2"], expect="accept"),
    Case("crlf-line-endings", "YAML parsing", PLAN, "name: crlf\r\nmodels:\r\n  llama31_8b: {factory: llama31_8b, "
         "family: dense, source: hf://meta-llama/Llama-3.1-8B, workload: nemo}\r\ncells:\r\n  - {model: llama31_8b, "
         "track: data_parallel, gpus: 2}\r\n", expect="accept"),
    Case("utf8-bom", "YAML parsing", matrix="\ufeffname: bom\nmodels:\n  llama31_8b: {factory: llama31_8b, family: dense, "
         "source: hf://meta-llama/Llama-3.1-8B, workload: nemo}\ncells:\n  - {model: llama31_8b, track: data_parallel, "
         "gpus: 2}\n", expect="accept"),
    Case("anchors-and-merge-keys", "YAML parsing", matrix="name: anchors\nmodels:\n  llama31_8b: {factory: llama31_8b, "
         "family: dense, source: hf://meta-llama/Llama-3.1-8B, workload: nemo}\ncells:\n  - &b {model: llama31_8b, "
         "track: data_parallel, gpus: 2}\n  - {<<: *b, gpus: 4}\n", expect="accept"),
]
