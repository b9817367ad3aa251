#!/usr/bin/env python3
"""Run the promtool unit tests of the alert rules, and prove the tests can fail.

    rules_test.py WORKDIR

1. Copies k8s/monitoring/kube-elector.rules.yml to WORKDIR with the annotations stripped and runs
   `promtool test rules scripts/ship/rules.test.yml` against it.
2. Mutation check, per alert: replacing its expr by one that never fires must fail the tests
   (so a firing case exists), and by one that fires for every election must fail them too
   (so a silent case exists).
3. Runbook: each alert's runbook_url points at docs/runbook.md, at the anchor of a section
   titled with the alert's name (GitHub's anchor: the heading in lower case).
"""
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s/monitoring/kube-elector.rules.yml"
TESTS = ROOT / "scripts/ship/rules.test.yml"
NEVER = "vector(1) > 2"
ALWAYS = 'count by (namespace, election) ({__name__=~"elector_.+"})'
RUNBOOK = ROOT / "docs/runbook.md"
RUNBOOK_URL = "https://github.com/kube-elector/kube-elector/blob/main/docs/runbook.md#"


def runbook_problems(groups) -> list:
    """Each alert's runbook_url is RUNBOOK_URL + the anchor of a `## <alert>` section."""
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{2,3} (.+)$", RUNBOOK.read_text(), re.M)}
    bad = []
    for g in groups:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            url = (r.get("annotations") or {}).get("runbook_url", "")
            want = RUNBOOK_URL + r["alert"].lower()
            if url != want:
                bad.append(f"{r['alert']}: runbook_url should be {want}, is {url!r}")
            elif r["alert"].lower() not in anchors:
                bad.append(f"{r['alert']}: docs/runbook.md has no section '## {r['alert']}'")
    return bad


def write_rules(workdir: pathlib.Path, groups) -> None:
    (workdir / "kube-elector.rules.labels-only.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def run(workdir: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", "test", "rules", "rules.test.yml"], cwd=workdir,
                          capture_output=True, text=True)


def main() -> int:
    workdir = pathlib.Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(TESTS, workdir / "rules.test.yml")
    groups = yaml.safe_load(RULES.read_text())["groups"]
    bad = runbook_problems(groups)
    if bad:
        for b in bad:
            print(f"FAIL {b}", file=sys.stderr)
        return 1
    print("  runbook: every alert's runbook_url names its own section of docs/runbook.md")
    for g in groups:
        for r in g["rules"]:
            r.pop("annotations", None)
    write_rules(workdir, groups)
    res = run(workdir)
    if res.returncode != 0:
        print(res.stdout + res.stderr, file=sys.stderr)
        print("FAIL promtool test rules", file=sys.stderr)
        return 1
    print("  promtool test rules: all alert tests pass")

    bad = []
    alerts = [(gi, ri, r["alert"]) for gi, g in enumerate(groups) for ri, r in enumerate(g["rules"]) if "alert" in r]
    for gi, ri, name in alerts:
        for label, expr in (("never fires", NEVER), ("fires everywhere", ALWAYS)):
            mutated = yaml.safe_load(yaml.safe_dump(groups))
            mutated[gi]["rules"][ri]["expr"] = expr
            write_rules(workdir, mutated)
            if run(workdir).returncode == 0:
                bad.append(f"{name}: tests still pass when the alert {label}; add a "
                           f"{'firing' if expr == NEVER else 'silent'} case to rules.test.yml")
    write_rules(workdir, groups)
    if bad:
        for b in bad:
            print(f"FAIL {b}", file=sys.stderr)
        return 1
    print(f"  mutation check: the tests catch a never-firing and an always-firing version of each of {len(alerts)} alerts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
