#!/usr/bin/env bash
# Build aos and walk through a world end to end on the local-directory default:
# create a world, store a blob, read it back, fork it, show the journal and check it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
. scripts/env.sh
scripts/setup.sh
cargo build --release --locked -p aos-cli
AOS="$CARGO_TARGET_DIR/release/aos"
demo="${1:-$(mktemp -d)/demo-world}"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$AOS" init "$demo"
cd "$demo"
printf 'hello from aos\n' > greeting.txt
step "$AOS" blob put greeting.txt
hash=$("$AOS" blob put greeting.txt)
step "$AOS" cat-object "$hash"
step "$AOS" fork . ../demo-fork
step "$AOS" -C ../demo-fork log
step "$AOS" info
step "$AOS" log
step "$AOS" fsck
# AIR, the world's typed control plane, checked and hashed as plain files (PR review, CI).
step "$AOS" air check "$repo/examples/orders/air"
step "$AOS" air hash "$repo/examples/orders/air"
echo
echo "The world is in $demo (its truth is in $demo/.aos)."
