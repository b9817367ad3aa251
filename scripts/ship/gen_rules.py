#!/usr/bin/env python3
"""Generate the plain Prometheus rules file from the PrometheusRule (one source of truth).

    gen_rules.py            write k8s/monitoring/kube-elector.rules.yml
    gen_rules.py --check    exit 1 if the committed file differs from what would be generated

The PrometheusRule's `.spec` is exactly a Prometheus rules file (`groups:`), so the plain file is
that spec, dumped with a header saying where it comes from.
"""
import argparse
import difflib
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "k8s/monitoring/prometheusrule.yaml"
TARGET = ROOT / "k8s/monitoring/kube-elector.rules.yml"

HEADER = """\
# GENERATED from prometheusrule.yaml (.spec) by scripts/ship/gen_rules.py; do not edit.
# Plain Prometheus rules file for setups without the Prometheus Operator (see prometheus.yml).
"""


def render() -> str:
    docs = [d for d in yaml.safe_load_all(SOURCE.read_text()) if d]
    if len(docs) != 1 or docs[0].get("kind") != "PrometheusRule":
        sys.exit(f"{SOURCE.relative_to(ROOT)}: expected exactly one PrometheusRule document, got {len(docs)}")
    spec = docs[0].get("spec") or {}
    if not spec.get("groups"):
        sys.exit(f"{SOURCE.relative_to(ROOT)}: .spec.groups is empty; add the rule groups there")
    body = yaml.safe_dump({"groups": spec["groups"]}, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    want = render()
    if args.check:
        have = TARGET.read_text() if TARGET.exists() else ""
        if have != want:
            diff = difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                        str(TARGET.relative_to(ROOT)), "generated")
            sys.stderr.writelines(diff)
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/ship/gen_rules.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
