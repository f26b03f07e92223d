#!/usr/bin/env bash
# Prints the cached guest vmlinux for the current fragment, or fails with a
# one-line error telling to run build-kernel.sh. Never builds.
exec "$(dirname "${BASH_SOURCE[0]}")/build-kernel.sh" --path
