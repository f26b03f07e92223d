#!/usr/bin/env bash
# The main job on a fresh machine: set up, then boot the demo microVM.
# On a host without VT-x/AMD-V (PVM, or no nested virtualization) the
# microVM runs inside the nested KVM lab, and this says so.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
setup/install.sh
if node -e 'import("./dist/vmm/kvm/host-support.js").then(m => process.exit(m.checkHostSupport().ok ? 0 : 1))'; then
  exec bin/vmctr boot "$@"
fi
test/lab/build-lab.sh >/dev/null
echo "[demo] this host cannot run Linux guests itself; booting the microVM inside the nested KVM lab" >&2
exec node dist/test/lab/lab-cli.js bin/vmctr boot "$@"
