#!/usr/bin/env bash
set -euo pipefail
echo "check-ship: not written yet" >&2
