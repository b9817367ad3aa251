#!/usr/bin/env bash
# Lint an OpenMetrics exposition (as served on /metrics) with `promtool check metrics`.
#
#   curl -s http://127.0.0.1:8080/metrics | scripts/check-metrics-lint.sh
#
# promtool (Prometheus 2.x) parses the classic text format 0.0.4, where a counter's HELP and TYPE
# lines name the sample itself (`x_total`); OpenMetrics names the family (`x`) and adds `# UNIT`
# and `# EOF`. This script first rewrites the counter descriptors to the classic form, exactly as
# Prometheus does when it ingests OpenMetrics, and drops the `# UNIT`/`# EOF` comments; samples
# are passed through unchanged. Then it runs promtool.
#
# Exit codes: 0 = clean (the only result accepted); 1 = promtool found a parse error;
# 3 = promtool found lint problems (missing HELP, bad suffix, ...), printed on stdout;
# 4 = promtool is not installed (install Debian's `prometheus` package); 5 = empty input.
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-metrics-lint: promtool not found; apt-get install -y --no-install-recommends prometheus" >&2
  exit 4
fi

input=$(cat)
if [ -z "$input" ]; then
  echo "check-metrics-lint: empty input on stdin" >&2
  exit 5
fi

classic=$(printf '%s\n' "$input" | awk '
  /^# UNIT / || /^# EOF$/ { next }
  /^# HELP / { if (help != "") print help; help = $0; help_name = $3; next }
  /^# TYPE / {
    if ($4 == "counter" && $3 !~ /_total$/) {
      if (help != "" && help_name == $3) sub("^# HELP " $3 " ", "# HELP " $3 "_total ", help)
      $3 = $3 "_total"
    }
    if (help != "") print help
    help = ""
    print
    next
  }
  { if (help != "") { print help; help = "" } print }
  END { if (help != "") print help }
')

set +e
printf '%s\n' "$classic" | promtool check metrics
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "check-metrics-lint: promtool check metrics exited $status (only 0 is accepted)" >&2
fi
exit "$status"
