# Shared settings for the project's scripts (sourced, not run).
# Builds are reused across runs and clones through a target directory outside the
# checkout; a new machine simply starts with an empty one.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    cache_root="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}"
    export CARGO_TARGET_DIR="$cache_root/aos/target"
fi
mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || {
    export CARGO_TARGET_DIR="${TMPDIR:-/tmp}/aos-target"
    mkdir -p "$CARGO_TARGET_DIR"
}
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
