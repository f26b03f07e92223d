#!/usr/bin/env bash
# Sets up (with the nested lab where the host needs it) and runs the whole
# test suite. The last line is the summary: "tests: N passed, N failed, N
# skipped", with "(K lab fault retried)" when an L1 died under a test that
# then passed or failed on a fresh one (test/guest-host.ts).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
setup/install.sh --lab
log="$(mktemp)"
export VMCTR_LAB_RETRIES_FILE="$(mktemp)"
trap 'rm -f "$log" "$VMCTR_LAB_RETRIES_FILE"' EXIT
set +e
npx --no-install ava --tap "$@" | tee "$log"
status=${PIPESTATUS[0]}
set -e
setup/tap-summary.sh "$log" "$status" "$VMCTR_LAB_RETRIES_FILE"
exit "$status"
