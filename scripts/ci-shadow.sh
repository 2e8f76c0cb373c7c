#!/usr/bin/env bash
# Gate a pull request that changes a world's AIR: would the change break the live world?
#
#   scripts/ci-shadow.sh WORLD NEW_AIR_DIR [BASE_AIR_DIR]
#
# 1. With BASE_AIR_DIR (the AIR of the target branch), print `aos air diff` for review.
# 2. Fork WORLD (a world checked in to the repository) into a scratch directory, so the
#    checked-in world is never written to.
# 3. `aos propose NEW_AIR_DIR` in the fork, then `aos shadow ID --replay-all --format json`:
#    every recorded input is re-run under the proposed manifest, with effects stubbed.
#
# The report is written to $SHADOW_REPORT (default shadow-report.json). The exit status is
# the shadow's: 0 when the rehearsal found no problem, 1 when it found a trap, a denied
# effect, a failed plan or a divergence not accepted; 2 for a usage or input error (for
# example AIR that does not validate). Extra shadow flags (e.g. --accept-divergences, or
# --events samples.jsonl) go in $SHADOW_ARGS. The aos binary is $AOS (default: aos).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 WORLD NEW_AIR_DIR [BASE_AIR_DIR]" >&2
    exit 2
fi
world=$1
air=$2
base=${3:-}
aos=${AOS:-aos}
report=${SHADOW_REPORT:-shadow-report.json}

if [ -n "$base" ]; then
    echo "== aos air diff $base $air"
    "$aos" air diff "$base" "$air"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$aos" -q fork "$world" "$scratch/world" >/dev/null

echo "== aos propose $air"
proposal=$("$aos" -C "$scratch/world" --format json propose "$air" -m "CI shadow of $air")
# Keys are sorted: the proposal's own "id" is the one followed by "manifest".
id=$(printf '%s' "$proposal" | sed -n 's/.*"id":\([0-9][0-9]*\),"manifest":.*/\1/p')
if [ -z "$id" ]; then
    echo "cannot read the proposal id from: $proposal" >&2
    exit 2
fi

echo "== aos shadow $id --replay-all ${SHADOW_ARGS:-}"
status=0
# shellcheck disable=SC2086 # SHADOW_ARGS is a list of flags
"$aos" -C "$scratch/world" --format json shadow "$id" --replay-all ${SHADOW_ARGS:-} >"$report" || status=$?
case $status in
    0) echo "shadow: no problems found (report in $report)" ;;
    1) echo "shadow: PROBLEMS FOUND — see $report (divergences, errors, denied effects)" >&2 ;;
    *) echo "shadow could not run (exit $status)" >&2 ;;
esac
exit "$status"
