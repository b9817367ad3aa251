#!/usr/bin/env python3
"""Runs checkov (a third-party security scanner) on every rendered kustomization and on the
Dockerfile, and fails on any failed check that scripts/ship/checkov-skips.yaml does not list
with its reason, or on a listed check that no longer fails anywhere (a stale skip).

    checkov_scan.py --checkov BIN --rendered DIR --dockerfile Dockerfile

Offline: --skip-download keeps checkov from fetching guidelines from its vendor's API.
"""

import argparse
import json
import pathlib
import subprocess
import sys

import yaml

SKIPS = pathlib.Path(__file__).with_name("checkov-skips.yaml")


def scan(checkov, framework, target_flag, target):
    out = subprocess.run(
        [checkov, target_flag, str(target), "--framework", framework, "--quiet", "--skip-download",
         "-o", "json"],
        capture_output=True, text=True, check=False,
    )
    # Exit 1 means "some checks failed"; anything else, or no JSON, is checkov itself failing.
    if out.returncode not in (0, 1):
        sys.exit(f"checkov {framework} {target}: exit {out.returncode}\n{out.stderr[-2000:]}")
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.exit(f"checkov {framework} {target}: no JSON report\n{out.stdout[-1000:]}\n{out.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    summary = {"passed": 0, "failed": 0, "parsing_errors": 0, "resource_count": 0}
    failed = []
    for r in reports:
        for key in summary:
            summary[key] += r.get("summary", {}).get(key, 0)
        for check in r.get("results", {}).get("failed_checks", []):
            failed.append((check["check_id"], check["check_name"], check["resource"], check["file_path"]))
    return summary, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkov", required=True)
    ap.add_argument("--rendered", required=True, help="directory of rendered kustomizations (*.yaml)")
    ap.add_argument("--dockerfile", required=True)
    a = ap.parse_args()
    skips = yaml.safe_load(SKIPS.read_text())
    problems = []
    for framework, flag, target in (
        ("kubernetes", "-d", a.rendered),
        ("dockerfile", "-f", a.dockerfile),
    ):
        listed = skips.get(framework, {})
        summary, failed = scan(a.checkov, framework, flag, target)
        if summary["parsing_errors"]:
            problems.append(f"{framework}: checkov could not parse {summary['parsing_errors']} file(s)")
        if summary["resource_count"] == 0:
            problems.append(f"{framework}: checkov found nothing to scan in {target}")
        unexpected = [f for f in failed if f[0] not in listed]
        seen = {f[0] for f in failed}
        stale = sorted(set(listed) - seen)
        accepted = len(failed) - len(unexpected)
        print(f"  checkov {framework} ({target}): {summary['resource_count']} resources, "
              f"{summary['passed']} passed, {len(unexpected)} failed, {accepted} skipped "
              f"({', '.join(sorted(seen & set(listed))) or 'none'}; reasons in {SKIPS.name})")
        for check_id, name, resource, path in unexpected:
            problems.append(f"{framework}: {check_id} {name}: {resource} ({path})")
        for check_id in stale:
            problems.append(f"{framework}: {check_id} is listed in {SKIPS.name} but no longer fails: remove it")
    if problems:
        sys.exit("checkov:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main()
