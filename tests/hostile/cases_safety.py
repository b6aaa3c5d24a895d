"""Hostile corpus, part 1: data safety (import targets, run ids, --resume, --out) and secrets."""

from __future__ import annotations

from tests.hostile.harness import PLAN, RUN, Case, gpu_profile, local_profile, nemo_matrix, tiny_matrix

TINY, LOCAL = tiny_matrix(), local_profile()


def _resume(name: str, run_id: str, **kw: object) -> Case:
    return Case(name, "data safety", ("run", "--resume", run_id, "--matrix", "{matrix}", "--profile", "{profile}"),
                matrix=TINY, profile=LOCAL, field="--resume", **kw)


def _automodel(name: str, *args: str, field: str, **kw: object) -> Case:
    return Case(name, "data safety", ("automodel", "--matrix", "{matrix}", *args), field=field, **kw)


DATA_SAFETY = [
    Case("import-target-is-a-user-folder", "data safety", RUN, TINY, local_profile(model_paths={"tiny_llama": "{victim}"}),
         field="model_paths.tiny_llama", fix="point it at a new folder"),
    Case("models-dir-holds-a-user-folder-named-like-the-model", "data safety", RUN,
         {**TINY, "models": {"victim": {**TINY["models"]["tiny_llama"]}}, "cells": [{**TINY["cells"][0], "model": "victim"}]},
         local_profile(models_dir="{tmp}"), field="models_dir", fix="point it at a new folder"),
    Case("import-target-is-a-user-file", "data safety", RUN, TINY, local_profile(model_paths={"tiny_llama": "{victim_file}"}),
         field="model_paths.tiny_llama", fix="new folder"),
    Case("import-target-is-a-link-to-a-user-folder", "data safety", RUN, TINY,
         local_profile(model_paths={"tiny_llama": "{tmp}/link"}), field="model_paths.tiny_llama", setup="link_to_victim"),
    Case("import-target-is-the-root-folder", "data safety", RUN, TINY, local_profile(model_paths={"tiny_llama": "/"}),
         field="model_paths.tiny_llama"),
    _resume("resume-climbs-out-of-scaling-home", "../../../..{tmp}/escaped", fix="letters, digits"),
    _resume("resume-dot-dot", ".."),
    _resume("resume-absolute-path", "{tmp}/elsewhere"),
    _resume("resume-with-slash", "a/b"),
    _resume("resume-option-looking", "-rf"),
    _resume("resume-with-space", "a b"),
    _resume("resume-with-newline", "run1\nrun2"),
    _resume("resume-hidden-name", ".hidden"),
    _resume("resume-with-shell-substitution", "$(touch {canary})", payload="$(touch {canary})"),
    _resume("resume-unknown-run-lists-recent-ones", "20990101-000000-ffffff", setup="seed_run",
            fix="20250101-020000-abc123"),
    _resume("resume-unknown-run-without-database", "nightly-42", fix="leave out --resume"),
    _automodel("automodel-out-is-an-existing-file", "--out", "{victim_file}", field="--out", fix="new folder name"),
    _automodel("automodel-out-is-a-user-folder", "--out", "{victim}", field="--out", fix="new or empty folder"),
    _automodel("automodel-version-not-a-number", "--out", "{tmp}/am", "--version", "abc", field="--version"),
    _automodel("automodel-version-with-command", "--out", "{tmp}/am", "--version", "0.5.0; touch {canary}",
               field="--version", payload="touch {canary}"),
    _automodel("automodel-version-empty", "--out", "{tmp}/am", "--version", "", field="--version"),
]

SECRET_FIX = "Secret block"


def _env_secret(name: str, key: str, value: str) -> Case:
    return Case(name, "secrets", profile=gpu_profile(env={key: value}), field=f"env.{key}", fix=SECRET_FIX,
                payload=value)


SECRETS_CASES = [
    _env_secret("env-key-named-token", "HF_TOKEN", "{hf}"),
    _env_secret("env-value-hugging-face-token", "MY_CACHE", "{hf}"),
    _env_secret("env-value-github-token", "GIT_HELPER", "{ghp}"),
    _env_secret("env-value-github-pat", "CI_VAR", "{ghpat}"),
    _env_secret("env-value-aws-key", "AWS_ID", "{aws}"),
    _env_secret("env-value-api-key", "OPENAI", "{sk}"),
    _env_secret("env-value-slack-token", "NOTIFY", "{slack}"),
    _env_secret("env-value-password-in-url", "DB", "postgresql://bench:{url_pw}@db.example:5432/results"),
    Case("note-holds-a-token", "secrets", matrix=nemo_matrix({"note": "download with {hf}"}), field="cells[0].note",
         fix=SECRET_FIX),
    Case("description-holds-a-token", "secrets", matrix=nemo_matrix(description="ci uses {ghp}"), field="description"),
    Case("source-url-with-password", "secrets",
         matrix=nemo_matrix(models={"llama31_8b": {**nemo_matrix()["models"]["llama31_8b"],
                                                   "source": "https://bob:{url_pw}@models.example/llama"}}),
         field="models.llama31_8b.source"),
    Case("models-dir-holds-a-token", "secrets", profile=gpu_profile(models_dir="/data/{hf}/models"), field="models_dir"),
    Case("image-url-with-password", "secrets", profile=gpu_profile(container={
        "runtime": "singularity", "image": "docker://bob:{url_pw}@registry.example/nemo:25.07"}), field="container.image"),
    Case("bind-holds-an-aws-key", "secrets", profile=gpu_profile(container={"binds": ["/data/{aws}:/data"]}),
         field="container.binds[0]"),
    Case("executable-flag-holds-a-token", "secrets", profile=gpu_profile(executable=["nemo", "--token={hf}"]),
         field="executable[1]"),
    Case("unknown-key-holds-a-token", "secrets", profile={**gpu_profile(), "hf_token": "{hf}"}, field="hf_token"),
    Case("token-used-as-a-key", "secrets", profile={**gpu_profile(), "{ghp}": "x"}, field="<secret-looking"),
    Case("defaults-note-holds-a-key", "secrets", matrix=nemo_matrix(defaults={"note": "{sk}"}), field="defaults.note"),
    Case("corrected-note-holds-a-token", "secrets", matrix=nemo_matrix({"corrected": {"note": "{slack}"}}),
         field="cells[0].corrected.note"),
    Case("axes-value-holds-a-key", "secrets", matrix={**nemo_matrix(), "cells": [], "axes": [
        {"model": ["llama31_8b"], "track": ["data_parallel"], "gpus": [2], "note": ["{aws}"]}]},
         field="axes[0].note[0]"),
    Case("note-holds-a-private-key", "secrets", matrix=nemo_matrix({"note": "{pem}\nMIIEpAIBAAKCAQEA"}),
         field="cells[0].note"),
    Case("slurm-account-is-an-api-key", "secrets", profile=gpu_profile({"account": "{sk}"}), field="slurm.account"),
    Case("matrix-flag-is-a-token", "secrets", ("plan", "--matrix", "{hf}"), field="--matrix", payload="{hf}"),
    Case("report-run-is-a-token", "secrets", ("report", "--run", "{ghp}"), field="--run", code=1),
    Case("resume-is-a-token", "secrets", ("run", "--resume", "{hf}", "--matrix", "{matrix}", "--profile", "{profile}"),
         TINY, LOCAL, field="--resume"),
    Case("syntax-error-on-a-line-with-a-token", "secrets", profile="name: x\nenv: {TOKEN_X: {hf}\n", field="p.yaml"),
    Case("duplicate-key-with-token-values", "secrets", profile="name: x\nenv:\n  A: {hf}\n  A: {ghp}\n",
         field="p.yaml", fix="keep one entry per key"),
    Case("database-url-with-password", "secrets", ("report", "--run", "r1"), code=1, field="results database",
         env={"SCALING_DB_URL": "postgresql://bench:{url_pw}@127.0.0.1:9/results"}),
]
