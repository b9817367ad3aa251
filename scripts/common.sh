# Sourced by the wrapper scripts in scripts/, so that they agree on three things:
#
#   - the working directory: the repository root;
#   - TARGET_DIR: where cargo puts what it builds, as cargo itself resolves it
#     (CARGO_TARGET_DIR, build.target-dir in .cargo/config.toml, else ./target), made absolute;
#   - SUDO: "sudo" when not running as root, so system package installs work either way.
#
#   . "$(dirname "$0")/common.sh"
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null) \
  || TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
case "$TARGET_DIR" in
  /*) ;;
  *) TARGET_DIR=$PWD/$TARGET_DIR ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export TARGET_DIR SUDO
