#!/usr/bin/env bash
# Build aos and the counter reducer, then run a world end to end on the local-directory
# default: create it from AIR, send events, show the state and the journal, replay and
# verify it, and check it with fsck. Pass a directory to keep the world there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
. scripts/env.sh
scripts/setup.sh
cargo build --release --locked -p aos-cli
scripts/build-reducers.sh >/dev/null
AOS="$CARGO_TARGET_DIR/release/aos"
COUNTER="$CARGO_TARGET_DIR/reducers/counter.wasm"
demo="${1:-$(mktemp -d)/counter-world}"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# A world whose genesis manifest is the counter example's AIR, with its compiled reducer.
step "$AOS" init "$demo" --air "$repo/examples/counter/air" --module "demo/CounterSM@1=$COUNTER"
cd "$demo"
step "$AOS" send demo/CounterEvent@1 '{"$tag":"Start","$value":{"target":3}}'
step "$AOS" send demo/CounterEvent@1 '{"$tag":"Tick"}'
step "$AOS" send demo/CounterEvent@1 '{"$tag":"Tick"}'
step "$AOS" state demo/CounterSM@1
step "$AOS" send demo/CounterEvent@1 '{"$tag":"Tick"}'
step "$AOS" state demo/CounterSM@1
# A mistyped event is refused (exit 2) and nothing is journaled.
printf '\n\033[1m$ %s\033[0m\n' "$AOS send demo/CounterEvent@1 '{\"\$tag\":\"Tock\"}'"
if "$AOS" send demo/CounterEvent@1 '{"$tag":"Tock"}'; then
    echo "a mistyped event was accepted" >&2
    exit 1
fi
step "$AOS" state demo/CounterSM@1 --at 4
step "$AOS" snapshot
step "$AOS" log -n 4
# Changing the world's own rules goes through governance: propose, rehearse, approve, apply.
step "$AOS" propose --approvals 2 -m "two approvals from now on"
step "$AOS" shadow 1 --replay-all
step "$AOS" approve 1 --as alice
step "$AOS" apply 1
step "$AOS" proposals ls
# Where did the counter's state come from?
step "$AOS" why demo/CounterSM@1
step "$AOS" replay --verify
step "$AOS" fsck
step "$AOS" info
echo
echo "The world is in $demo (its truth is in $demo/.aos)."
