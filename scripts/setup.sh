#!/usr/bin/env bash
# Install what the build and tests need on a fresh machine of this kind. Idempotent:
# it installs nothing that is already present.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v mount >/dev/null || need+=(mount)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y --no-install-recommends "${need[@]}"
    else
        echo "missing: ${need[*]} (install them, or run as root)" >&2
        exit 2
    fi
fi
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }
for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$c" >/dev/null 2>&1 || { echo "cargo $c is required" >&2; exit 2; }
    fi
done
