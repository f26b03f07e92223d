#!/usr/bin/env bash
# Sets up (with the nested lab where the host needs it) and runs the whole
# test suite. The last line is the summary: "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
setup/install.sh --lab
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
npx --no-install ava --tap "$@" | tee "$log"
status=${PIPESTATUS[0]}
set -e
count() { awk -v k="# $1" '$0 ~ "^"k" " { n = $3 } END { print n + 0 }' "$log"; }
echo "tests: $(count pass) passed, $(count fail) failed, $(count skip) skipped"
exit "$status"
