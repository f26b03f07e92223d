#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run a container in its own
# microVM from the built-in default image (arguments, if any, go to
# `vmctr run` instead). On a host without VT-x/AMD-V (PVM, or no nested
# virtualization) the pod runs inside the nested KVM lab, and this says so.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
setup/install.sh
args=("$@")
((${#args[@]})) || args=(--rm default -- sh -c 'echo "hello from pod $(hostname): $(uname -sr) on $(nproc) vCPU, as $(id -un)"')
if node -e 'import("./dist/vmm/kvm/host-support.js").then(m => process.exit(m.checkHostSupport().ok ? 0 : 1))'; then
  exec bin/vmctr run "${args[@]}"
fi
test/lab/build-lab.sh >/dev/null
echo "[demo] this host cannot run Linux guests itself; running the pod inside the nested KVM lab" >&2
exec node dist/test/lab/lab-cli.js bin/vmctr run "${args[@]}"
