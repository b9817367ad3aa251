#!/usr/bin/env python3
"""Print every query of a Grafana dashboard with its template variables substituted.

    dashboard-queries.py grafana/kube-elector.json --var namespace=default --var election=demo \
        [--rate-interval 2m] [--json]

Walks all panels (including panels nested in rows) and every target with an `expr`, replaces
`$var`, `${var}`, `${var:fmt}` and `[[var]]` with the given values and Grafana's built-ins
(`$__rate_interval`, `$__interval`, `$__range`), and fails if any `$` variable is left. Template
variables of the form label_values(metric, label) are emitted too, as the PromQL
`count by (label) (metric)`, so a checker can prove each variable has values.
Output: one JSON object per line {kind, panel_id, panel, type, ref, expr, instant}, or a JSON
array with --json.
"""
import argparse
import json
import re
import sys

VAR = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def substitute(expr: str, values: dict, where: str) -> str:
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise SystemExit(f"{where}: variable ${name} has no value; pass --var {name}=VALUE")
        return values[name]
    out = VAR.sub(repl, expr)
    if "$" in out:
        raise SystemExit(f"{where}: unresolved '$' left in {out!r}")
    return out


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboard")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--rate-interval", default="1m", help="value for $__rate_interval (default 1m)")
    ap.add_argument("--interval", default="15s", help="value for $__interval (default 15s)")
    ap.add_argument("--range", default="1h", help="value for $__range (default 1h)")
    ap.add_argument("--json", action="store_true", help="print one JSON array instead of JSON lines")
    a = ap.parse_args()
    values = {"__rate_interval": a.rate_interval, "__interval": a.interval, "__range": a.range,
              "datasource": "prometheus"}
    for kv in a.var:
        if "=" not in kv:
            raise SystemExit(f"--var expects NAME=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        values[k] = v
    with open(a.dashboard) as f:
        dash = json.load(f)

    out = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
        if not m:
            raise SystemExit(f"variable {v.get('name')}: only label_values(metric, label) is supported, got {q!r}")
        expr = substitute(f"count by ({m.group(2)}) ({m.group(1)})", values, f"variable {v['name']}")
        out.append({"kind": "variable", "panel_id": None, "panel": f"${v['name']}", "type": "variable",
                    "ref": v["name"], "expr": expr, "instant": True})
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" not in t:
                continue
            where = f"panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}"
            out.append({"kind": "panel", "panel_id": p.get("id"), "panel": p.get("title"), "type": p.get("type"),
                        "ref": t.get("refId"), "expr": substitute(t["expr"], values, where),
                        "instant": bool(t.get("instant"))})
    if not any(o["kind"] == "panel" for o in out):
        raise SystemExit(f"{a.dashboard}: no panel queries found")
    if a.json:
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        for o in out:
            print(json.dumps(o))
    return 0


if __name__ == "__main__":
    sys.exit(main())
