#!/usr/bin/env bash
set -euo pipefail
echo "chaos: not written yet" >&2
