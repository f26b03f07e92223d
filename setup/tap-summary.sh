#!/usr/bin/env bash
# Prints the test suite's summary line from ava's TAP output, counting the
# test lines themselves (not ava's "# pass" footer, which a crashed reporter
# never writes: ava 7's TAP reporter dies on a global timeout):
#   tests: N passed, N failed, N skipped[ (K lab fault retried)]
# A missing plan line (the reporter crashed) or a non-zero exit with no failed
# test is one more failure, never a silent zero.
#   setup/tap-summary.sh TAP_LOG AVA_EXIT_STATUS [RETRIES_FILE]
set -euo pipefail
[[ $# -ge 2 && $# -le 3 ]] || { echo "usage: setup/tap-summary.sh TAP_LOG AVA_EXIT_STATUS [RETRIES_FILE]" >&2; exit 2; }
log=$1 status=$2 retries=${3:-}
read -r passed failed skipped planned < <(awk '
  /^ok / { if (/# SKIP/ || /# TODO/) s++; else p++ }
  /^not ok / { if (/# TODO/) s++; else f++ }
  /^1\.\.[0-9]+/ { plan = 1 }
  END { print p + 0, f + 0, s + 0, plan + 0 }' "$log")
notes=()
if ((planned == 0)); then
  failed=$((failed + 1))
  notes+=("the test reporter ended without its plan line: counted as one more failure")
elif ((status != 0 && failed == 0)); then
  failed=$((failed + 1))
  notes+=("ava exited with status $status but reported no failed test: counted as one failure")
fi
for note in "${notes[@]}"; do echo "# $note"; done
retried=0
[[ -n $retries && -f $retries ]] && retried=$(grep -c . "$retries" || true)
line="tests: $passed passed, $failed failed, $skipped skipped"
((retried == 0)) || line+=" ($retried lab fault retried)"
echo "$line"
