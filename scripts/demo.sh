#!/usr/bin/env bash
set -euo pipefail
echo "demo: not written yet" >&2
