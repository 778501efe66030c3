# Shared by scripts/demo and scripts/test. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# One build directory outside the clone: every clone on this machine (and CI) reuses it.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/etl-pipelines/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*" >&2; }

require_rust() {
  command -v cargo >/dev/null || {
    echo "cargo is not installed: install Rust (https://rustup.rs) and run this again" >&2
    exit 1
  }
}

# The local services' settings (ports, URLs, the cargo-lambda path) for this shell.
load_service_env() {
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.services/env"
  set +a
  export PATH="$TOOLS_BIN:$PATH"
}
