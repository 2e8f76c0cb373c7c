#!/usr/bin/env bash
# Build every example reducer (examples/*/reducer) for wasm32-unknown-unknown and copy
# each module to $CARGO_TARGET_DIR/reducers/<name>.wasm, printing the paths.
#
# Toolchain: the rustup wasm32 target when it is installed; otherwise Debian's rustc with
# the std sources (rustc-web, rust-web-src) and wasm-ld from lld-N (N = that rustc's LLVM
# major), building core and alloc from source (-Zbuild-std). Idempotent: installs only
# what is missing (needs root for apt-get). The toolchain variables are set only for the
# reducer builds, never exported to the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
out_dir="$CARGO_TARGET_DIR/reducers"
mkdir -p "$out_dir"

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing: $* (install them with apt-get, or run as root)" >&2
        exit 2
    fi
    if [ -z "${apt_updated:-}" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A 64 KiB stack instead of the linker's 1 MiB: the stack sits below the static data and
# the heap, so a small step then touches only the first pages of its memory, which the
# kernel keeps resident between steps (a 1 MiB stack pushed every step past them).
stack_flags="-Clink-arg=-zstack-size=65536"
build_env=("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=$stack_flags")
build_args=(build --release --locked --target wasm32-unknown-unknown)
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "== toolchain: rustup target wasm32-unknown-unknown"
else
    need=()
    [ -x /usr/bin/rustc ] || need+=(rustc-web)
    [ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
    [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
    llvm=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
    [ -n "$llvm" ] || { echo "cannot read the LLVM version of /usr/bin/rustc" >&2; exit 2; }
    command -v "wasm-ld-$llvm" >/dev/null || apt_install "lld-$llvm"
    echo "== toolchain: $(/usr/bin/rustc -V), wasm-ld-$llvm, -Zbuild-std=core,alloc"
    build_env+=(
        RUSTC=/usr/bin/rustc
        RUSTC_BOOTSTRAP=1
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-$llvm"
    )
    build_args+=(-Zbuild-std=core,alloc)
fi

# build DIR NAME [PACKAGE]: build the reducer crate in DIR (or PACKAGE of that workspace)
# and copy its module to $out_dir/NAME.wasm.
build() {
    local dir=$1 name=$2 pkg=${3:-} crate
    crate=${pkg:-$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)}
    echo "== build $dir${pkg:+ -p $pkg}"
    (
        cd "$dir"
        env "${build_env[@]}" CARGO_TARGET_DIR="$out_dir/target" cargo "${build_args[@]}" ${pkg:+-p "$pkg"}
    )
    local wasm="$out_dir/target/wasm32-unknown-unknown/release/${crate//-/_}.wasm"
    [ -f "$wasm" ] || { echo "no module at $wasm" >&2; exit 1; }
    cp "$wasm" "$out_dir/$name.wasm.tmp"
    mv "$out_dir/$name.wasm.tmp" "$out_dir/$name.wasm"
    echo "$out_dir/$name.wasm"
}

built=0
for dir in examples/*/reducer; do
    [ -f "$dir/Cargo.toml" ] || continue
    build "$dir" "$(basename "$(dirname "$dir")")"
    built=$((built + 1))
done
[ "$built" -gt 0 ] || { echo "no examples/*/reducer found" >&2; exit 1; }
# The notebook's second reducer (notes/Archive@1) is a member of the same workspace.
build examples/notebook/reducer notebook-archive notebook-archive
