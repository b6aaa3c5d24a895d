#!/usr/bin/env bash
# Build (or reuse) the isolated virtualenvs of the contract tier: the real NeMo libraries that check
# what scaling-matrix renders. Never touches the project's own .venv.
#
#   scripts/contract-venvs.sh [build] [automodel|nemo2|megatron_bridge ...]   build missing venvs (default: all)
#   scripts/contract-venvs.sh path NAME                       print the venv directory of NAME
#
# Each venv is installed from contract/requirements-NAME.txt (a full lock, `pip install --no-deps`)
# into $SCALING_CONTRACT_HOME/NAME-<hash> (default ~/.cache/scaling-matrix/contract), where <hash>
# covers the lock, BUILD (bump it when the install steps below change) and the Python version: an
# unchanged lock reuses the venv, a changed one builds a new venv and removes the old ones this
# script made. A venv counts only once its
# import smoke test passed (marker file .contract-complete).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
HOME_DIR="${SCALING_CONTRACT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/scaling-matrix/contract}"
ALL=(automodel nemo2 megatron_bridge)
MARK=.contract-complete
BUILD="v1 pip>=24 --no-deps"

# What must import in each venv before it is used (the modules the checkers read).
smoke_automodel='import nemo_automodel, nemo_automodel.cli.app
from nemo_automodel.components.config.loader import load_yaml_config
import nemo_automodel.components._peft.lora, nemo_automodel.components.datasets.llm.squad
print("nemo_automodel", nemo_automodel.__version__)'
smoke_megatron_bridge='import hydra, omegaconf
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
print("hydra-core", hydra.__version__, "omegaconf", omegaconf.__version__)'
smoke_nemo2='import nemo, nemo_run, megatron.core, torch
from nemo.collections import llm
from nemo_run.cli.cli_parser import parse_cli_args
print("nemo", nemo.__version__, "nemo_run", nemo_run.__version__, "megatron.core",
      megatron.core.__version__, "torch", torch.__version__)'

venv_dir() {  # NAME -> directory keyed by the lock, this script and the interpreter version
  local req="contract/requirements-$1.txt"
  [ -f "$req" ] || { echo "no lock file $req (names: ${ALL[*]})" >&2; return 2; }
  local key
  key="$( { cat "$req"; echo "$BUILD"; "$PY" -c 'import sys; print(sys.version_info[:2])'; } | sha256sum | cut -c1-16)"
  echo "$HOME_DIR/$1-$key"
}

build_one() {  # NAME
  local name="$1" dir t0 smoke
  dir="$(venv_dir "$name")"
  if [ -f "$dir/$MARK" ]; then
    echo "contract venv $name: reusing $dir" >&2
    return 0
  fi
  smoke="smoke_$name"
  mkdir -p "$HOME_DIR"
  rm -rf "$dir"  # a venv without the marker is an interrupted build of ours
  t0=$(date +%s)
  echo "contract venv $name: building $dir from contract/requirements-$name.txt" >&2
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -qq --upgrade "pip>=24" >&2
  "$dir/bin/python" -m pip install -qq --no-deps -r "contract/requirements-$name.txt" >&2
  (cd /tmp && HF_HUB_OFFLINE=1 "$dir/bin/python" -W ignore -c "${!smoke}") >&2
  echo "built in $(( $(date +%s) - t0 )) s, $(du -sh "$dir" | cut -f1)" > "$dir/$MARK"
  echo "contract venv $name: $(cat "$dir/$MARK")" >&2
  for old in "$HOME_DIR/$name"-*; do  # only venvs this script made (they carry the marker)
    if [ "$old" != "$dir" ] && [ -f "$old/$MARK" ]; then rm -rf "$old"; fi
  done
}

cmd="${1:-build}"
case "$cmd" in
  path) venv_dir "${2:?usage: $0 path NAME}" ;;
  build) shift || true; for n in "${@:-${ALL[@]}}"; do build_one "$n"; done ;;
  automodel|nemo2|megatron_bridge) for n in "$@"; do build_one "$n"; done ;;
  *) echo "usage: $0 [build] [${ALL[*]}] | path NAME" >&2; exit 2 ;;
esac
