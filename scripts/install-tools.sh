#!/usr/bin/env bash
set -euo pipefail
echo "install-tools: not written yet" >&2
