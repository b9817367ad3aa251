#!/usr/bin/env python3
"""Generate grafana/kube-elector.json, the kube-elector Grafana dashboard.

    gen_dashboard.py            write grafana/kube-elector.json
    gen_dashboard.py --check    exit 1 if the committed dashboard differs from what would be generated

Panels are declared here once (title, type, queries, unit) so the queries stay consistent: every
query filters on the `namespace` and `election` template variables and uses the `${datasource}`
variable. Panels on series kube-elector does not serve (kube-state-metrics, cAdvisor) say so in
their title and description ("kube-state-metrics only", "cAdvisor only"); the live check runs
them against fixture series with those exporters' names and labels (scripts/ship/live.py). scripts/ship/dashboard-queries.py reads the generated JSON back, so the live check in
scripts/check-ship.sh runs exactly what Grafana would.
"""
import argparse
import difflib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = ROOT / "grafana/kube-elector.json"

DS = {"type": "prometheus", "uid": "${datasource}"}
S = 'namespace=~"$namespace", election=~"$election"'
RI = "$__rate_interval"

GREEN, RED, BLUE, ORANGE = "green", "red", "blue", "orange"


def target(expr, legend="__auto", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend, "range": not instant,
         "instant": instant, "editorMode": "code"}
    if fmt != "time_series":
        t["format"] = fmt
    return t


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def base_panel(pid, kind, title, desc, pos, targets, unit=None, defaults_extra=None, custom=None, options=None):
    defaults = {"color": {"mode": "palette-classic"}, "mappings": [],
                "thresholds": thresholds((GREEN, None))}
    if unit:
        defaults["unit"] = unit
    if custom is not None:
        defaults["custom"] = custom
    defaults.update(defaults_extra or {})
    x, y, w, h = pos
    return {"id": pid, "type": kind, "title": title, "description": desc, "datasource": DS,
            "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options or {}}


def stat(pid, title, desc, pos, targets, unit=None, text_mode="value", color_mode="value", steps=None,
         mappings=None, no_value=None):
    extra = {"thresholds": thresholds(*(steps or [(GREEN, None)])), "color": {"mode": "thresholds"}}
    if no_value:
        # Shown, in the base threshold colour (red where it matters), when the query returns nothing.
        extra["noValue"] = no_value
    if mappings:
        extra["mappings"] = mappings
    return base_panel(pid, "stat", title, desc, pos, targets, unit, extra, options={
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "auto", "textMode": text_mode, "colorMode": color_mode, "graphMode": "none",
        "justifyMode": "auto", "wideLayout": True, "showPercentChange": False,
        "percentChangeColorMode": "standard"})


def timeseries(pid, title, desc, pos, targets, unit=None, draw="line", stack=False, decimals=None):
    custom = {"drawStyle": draw, "lineWidth": 1, "fillOpacity": 10 if draw == "line" else 80,
              "showPoints": "never", "spanNulls": False, "axisPlacement": "auto",
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    extra = {"decimals": decimals} if decimals is not None else None
    return base_panel(pid, "timeseries", title, desc, pos, targets, unit, extra, custom, options={
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"}})


def add_app_health_panels(add):
    """Health-gated candidacy (--app-health): each pod's application health and how many
    candidates stand. elector_app_healthy is exported only with --app-health."""
    add(timeseries(30, "Application health and candidacy",
                   "A: 1 while a pod's application passes its --app-health check (absent without "
                   "--app-health). B: electors standing for election; 0 means no healthy candidate "
                   "(KubeElectorNoHealthyCandidate).", (0, 70, 24, 8),
                   [target(f"max by (pod) (elector_app_healthy{{{S}}})", "{{pod}} application healthy", "A"),
                    target(f"sum by (namespace, election) (elector_candidate{{{S}}})",
                           "{{election}} candidates standing", "B")], decimals=0))


def add_proxy_panels(add):
    """The leader-forwarding proxy (--proxy-listen), in a row of its own: what each pod's proxy did
    with the requests it received, how many had to wait for a leader, and what the proxy adds to
    a request's latency. The elector_proxy_* series exist only on electors run with --proxy-listen."""
    add({"id": 40, "type": "row", "title": "Proxy (--proxy-listen)", "collapsed": False,
         "gridPos": {"x": 0, "y": 78, "w": 24, "h": 1}, "panels": []})
    add(timeseries(41, "Proxy requests",
                   "Requests per second by what the proxies did with them: local (passed to the "
                   "leader's own application), forwarded (a follower sent it on to the leader's proxy; "
                   "it is then counted local there too), rejected (answered 503 with Retry-After: no "
                   "leader within --proxy-queue-timeout, or the queue full); and queued, those that had "
                   "to wait for a leader (during a handover) before one of the above.", (0, 79, 12, 8),
                   [target(f"sum by (namespace, election, outcome) (rate(elector_proxy_requests_total{{{S}}}[{RI}]))",
                           "{{outcome}}", "A"),
                    target(f"sum by (namespace, election) (rate(elector_proxy_queued_total{{{S}}}[{RI}]))",
                           "queued", "B")], unit="reqps"))
    add(timeseries(42, "Proxy requests by pod",
                   "Each pod's proxy by outcome: the pod the Service sent a request to, not the one "
                   "whose application answered it. Local requests come from the leader only.",
                   (12, 79, 12, 8),
                   [target(f"sum by (pod, outcome) (rate(elector_proxy_requests_total{{{S}}}[{RI}]))",
                           "{{pod}} {{outcome}}")], unit="reqps"))
    q = ("histogram_quantile({p}, sum by (namespace, election, le) "
         "(rate(elector_proxy_added_latency_seconds_bucket{{{S}}}[{RI}])))")
    add(timeseries(43, "Proxy added latency",
                   "What the proxy adds to a request, per hop: from its arrival at a proxy until the "
                   "response head is passed back, minus the upstream's own time to the response head. "
                   "A forwarded request is counted at both proxies; time spent queued for a leader is "
                   "included.", (0, 87, 12, 8),
                   [target(q.format(p=p, S=S, RI=RI), f"p{int(p * 100)}", ref)
                    for p, ref in ((0.5, "A"), (0.99, "B"))], unit="s"))
    all_q = f"sum by (namespace, election) (rate(elector_proxy_requests_total{{{S}}}[{RI}]))"
    rej_q = (f'(sum by (namespace, election) (rate(elector_proxy_requests_total{{{S}, outcome="rejected"}}[{RI}]))'
             f" or {all_q} * 0) / ({all_q} > 0)")
    add(timeseries(44, "Proxy rejected share",
                   "Share of the proxies' requests answered 503 (0 when none were; left out without "
                   "traffic). KubeElectorProxyRejecting fires above 5% for 5m.", (12, 87, 6, 8),
                   [target(rej_q, "{{election}}")], unit="percentunit"))
    add(timeseries(45, "Proxy queue depth",
                   "Requests waiting for a leader at each pod's proxy (at most --proxy-queue-limit). "
                   "Non-zero only during handovers; a lasting queue means no reachable leader.",
                   (18, 87, 6, 8),
                   [target(f"max by (pod) (elector_proxy_queue_depth{{{S}}})", "{{pod}}")], decimals=0))


def dashboard():
    panels = []
    add = panels.append

    add(stat(1, "Current leader", "The pod whose elector reports elector_is_leader 1, per election. "
             "Red \"no leader\" when no pod does, or nothing is scraped.",
             (0, 0, 8, 4),
             [target(f"max by (namespace, election, pod) (elector_is_leader{{{S}}}) == 1",
                     "{{namespace}}/{{election}}: {{pod}}", instant=True)],
             text_mode="name", color_mode="background", steps=[(RED, None), (GREEN, 1)], no_value="no leader"))
    add(stat(2, "Leaders", "Pods reporting leadership (each pod once, however many jobs scrape it). "
             "Exactly 1 is healthy; 0 (also when nothing is scraped) means nobody serves leader-only "
             "traffic; more than 1 for longer than a scrape interval is split brain.",
             (8, 0, 4, 4),
             [target(f"sum by (namespace, election) (max by (namespace, election, pod) (elector_is_leader{{{S}}}))"
                     " or on () vector(0)", "{{election}}", instant=True)],
             color_mode="background", steps=[(RED, None), (GREEN, 1), (RED, 2)]))
    add(stat(3, "Followers", "Pods standing by (elector_is_leader 0); 0 (red) also when nothing is scraped.",
             (12, 0, 4, 4),
             [target(f"sum by (namespace, election) (1 - max by (namespace, election, pod) (elector_is_leader{{{S}}}))"
                     " or on () vector(0)", "{{election}}", instant=True)],
             steps=[(RED, None), (ORANGE, 0.5), (GREEN, 1)]))
    add(stat(4, "Fencing token", "The leader's fencing token (followers report -1; red while nobody "
             "leads or nothing is scraped). It grows on every acquisition; pass it with writes so "
             "storage can reject a stale leader. Its history is in \"Fencing token history\".", (16, 0, 4, 4),
             [target(f"max by (namespace, election) (elector_fencing_token{{{S}}})", "{{election}}",
                     instant=True)], steps=[(RED, None), (GREEN, 0)], no_value="none"))
    add(stat(5, "Versions", "Running kube-elector versions (elector_build_info).", (20, 0, 4, 4),
             [target(f"count by (version) (elector_build_info{{{S}}})", "{{version}}", instant=True)],
             text_mode="value_and_name", steps=[(RED, None), (GREEN, 1)], no_value="no elector scraped"))

    timeline = base_panel(
        6, "state-timeline", "Leadership timeline",
        "Who held the lease when: one row per pod, green while it led.", (0, 4, 24, 6),
        [target(f"max by (namespace, election, pod) (elector_is_leader{{{S}}})", "{{pod}}")],
        defaults_extra={"color": {"mode": "thresholds"},
                        "thresholds": thresholds((BLUE, None), (GREEN, 1)),
                        "mappings": [{"type": "value", "options": {
                            "0": {"text": "follower", "color": BLUE, "index": 0},
                            "1": {"text": "leader", "color": GREEN, "index": 1}}}]},
        custom={"fillOpacity": 80, "lineWidth": 0},
        options={"showValue": "never", "rowHeight": 0.8, "mergeValues": True, "alignValue": "left",
                 "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
                 "tooltip": {"mode": "single", "sort": "none"}})
    add(timeline)

    # Events per step: the counter's difference over one step ($__interval), so each event lands
    # in exactly one bar (increase over $__rate_interval would count it in every overlapping bar).
    # A counter reset (the elector restarted) gives a negative difference, which is dropped.
    def per_step(metric, by):
        sel = f"{metric}{{{S}}}"
        return f"sum by ({by}) (({sel} - {sel} offset $__interval) >= 0)"

    add(timeseries(7, "Leadership transitions",
                   "Acquisitions and losses per pod, each counted once, in the step it happened in. "
                   "One handover is one acquired and one lost; a steady stream means flapping.",
                   (0, 10, 12, 8),
                   [target(per_step("elector_leadership_transitions_total", "pod, direction"),
                           "{{pod}} {{direction}}")], draw="bars", decimals=0))
    add(timeseries(8, "Observed leader changes",
                   "Leader changes each candidate observed, each counted once, in the step it happened "
                   "in (every pod sees every handover, so one handover is one per pod).", (12, 10, 12, 8),
                   [target(per_step("elector_observed_leader_changes_total", "pod"), "{{pod}}")],
                   draw="bars", decimals=0))

    q = "histogram_quantile({p}, sum by (namespace, election, le) (rate(elector_renew_duration_seconds_bucket{{{S}}}[{RI}])))"
    add(timeseries(9, "Renew latency", "Lease renewal latency quantiles (all results). Compare with "
                   "--retry-period and --renew-deadline.", (0, 18, 12, 8),
                   [target(q.format(p=p, S=S, RI=RI), f"p{int(p * 100)} {{{{election}}}}", ref)
                    for p, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))], unit="s"))
    heat = base_panel(
        10, "heatmap", "Renew latency distribution", "Renewals per latency bucket.", (12, 18, 12, 8),
        [target(f"sum by (le) (increase(elector_renew_duration_seconds_bucket{{{S}}}[{RI}]))", "{{le}}",
                fmt="heatmap")],
        custom={"scaleDistribution": {"type": "linear"}, "hideFrom": {"legend": False, "tooltip": False, "viz": False}},
        options={"calculate": False, "cellGap": 1, "showValue": "never",
                 "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "scale": "exponential",
                           "exponent": 0.5, "steps": 64, "reverse": False},
                 "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
                 "rowsFrame": {"layout": "auto"},
                 "legend": {"show": True}, "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
                 "exemplars": {"color": "rgba(255,0,255,0.7)"}, "filterValues": {"le": 1e-9}})
    add(heat)

    add(timeseries(11, "Renewals by result", "Renew attempts per second by pod and result.", (0, 26, 8, 8),
                   [target(f"sum by (pod, result) (rate(elector_renew_duration_seconds_count{{{S}}}[{RI}]))",
                           "{{pod}} {{result}}")], unit="reqps"))
    fail_q = (f'sum by (namespace, election) (rate(elector_renew_duration_seconds_count{{{S}, result="failure"}}[{RI}]))'
              f" or sum by (namespace, election) (rate(elector_renew_duration_seconds_count{{{S}}}[{RI}])) * 0")
    add(timeseries(12, "Renew failures", "Failed renewals per second (0 when none failed).", (8, 26, 8, 8),
                   [target(fail_q, "{{election}}")], unit="reqps"))
    add(timeseries(13, "Time since last renew",
                   "Seconds since the newest successful renewal among the candidates, as of the last "
                   "scrape: a sawtooth that peaks near --retry-period + the scrape interval while a "
                   "leader is healthy (2s + 15s with the shipped settings; under --retry-period only "
                   "with a 1s scrape). It compares Prometheus's clock with the elector's wall clock, so "
                   "clock skew shifts it; the KubeElectorLeaderStale alert uses the renewal rate instead.",
                   (16, 26, 8, 8),
                   [target(f"time() - max by (namespace, election) (elector_last_renew_timestamp_seconds{{{S}}})",
                           "{{election}}")], unit="s"))

    add(timeseries(14, "API requests", "Kubernetes API requests per second by verb and code "
                   "(code \"error\" = no HTTP answer).", (0, 34, 8, 8),
                   [target(f"sum by (verb, code) (rate(elector_api_requests_total{{{S}}}[{RI}]))",
                           "{{verb}} {{code}}")], unit="reqps"))
    all_q = f"sum by (verb) (rate(elector_api_requests_total{{{S}}}[{RI}]))"
    err_q = (f'(sum by (verb) (rate(elector_api_requests_total{{{S}, code!~"2..|404|409"}}[{RI}])) or {all_q} * 0)'
             f" / ({all_q} > 0)")
    add(timeseries(15, "API error ratio", "Share of API requests that failed, by verb. 404 (no lease "
                   "yet) and 409 (lost a race) are normal and not counted. Verbs without requests in "
                   "the window are left out.", (8, 34, 8, 8),
                   [target(err_q, "{{verb}}")], unit="percentunit"))
    add(timeseries(16, "API latency p99", "99th percentile Kubernetes API request latency by verb; "
                   "verbs without requests in the window (NaN) are left out.",
                   (16, 34, 8, 8),
                   [target(f"histogram_quantile(0.99, sum by (verb, le) (rate(elector_api_request_duration_seconds_bucket{{{S}}}[{RI}]))) >= 0",
                           "{{verb}}")], unit="s"))

    # process_* carry no election labels: join them to the election through the scrape target.
    join = f"on (job, instance) group_left (election) max by (job, instance, election) (elector_build_info{{{S}}})"
    add(timeseries(17, "Memory (RSS)", "Resident memory of each elector process.", (0, 42, 6, 8),
                   [target(f"process_resident_memory_bytes * {join}", "{{pod}}")], unit="bytes"))
    add(timeseries(18, "CPU", "CPU used by each elector process, in cores.", (6, 42, 6, 8),
                   [target(f"rate(process_cpu_seconds_total[{RI}]) * {join}", "{{pod}}")], unit="short"))
    add(timeseries(19, "Open file descriptors", "Open file descriptors of each elector process.",
                   (12, 42, 6, 8), [target(f"process_open_fds * {join}", "{{pod}}")], unit="short", decimals=0))
    add(timeseries(20, "Uptime", "Seconds since each elector process started.", (18, 42, 6, 8),
                   [target(f"(time() - process_start_time_seconds) * {join}", "{{pod}}")], unit="s"))
    add(stat(21, "client-go compatible status", "leader_election_master_status summed per election "
             "name, as client-go based dashboards expect it (1 = one leader; 0, red, also when nothing "
             "is scraped).", (0, 50, 8, 4),
             [target('sum by (name) (leader_election_master_status{namespace=~"$namespace", name=~"$election"})'
                     " or on () vector(0)", "{{name}}", instant=True)],
             color_mode="background", steps=[(RED, None), (GREEN, 1), (RED, 2)]))
    add(stat(22, "client-go slow path", "leader_election_slowpath_total: renewals that had to read "
             "the lock again (for example after a conflict).", (8, 50, 8, 4),
             [target(f'sum by (name) (increase(leader_election_slowpath_total{{namespace=~"$namespace", name=~"$election"}}[{RI}]))',
                     "{{name}}", instant=True)]))

    # ---- what on-call needs besides the elector's own series ------------------------------------
    add(timeseries(23, "Fencing token history",
                   "The leader's fencing token over time (followers' -1 left out). It steps up by one "
                   "with each new leader; a step down is a token reset (the lock was deleted and "
                   "recreated by a candidate that had not seen the last count: README, limits), which "
                   "a fenced store rejects.", (0, 54, 12, 8),
                   [target(f"max by (namespace, election) (elector_fencing_token{{{S}}} >= 0)", "{{election}}")],
                   decimals=0))
    add(stat(24, "Lock holder per the API (kube-state-metrics only)",
             "Who holds the Lease according to the API server, from kube-state-metrics' kube_lease_owner "
             "(lease_holder label; needs kube-state-metrics with the leases collector; empty without it). "
             "Compare with \"Current leader\", which is what the electors report.", (12, 54, 12, 4),
             [target('max by (namespace, lease, lease_holder) (kube_lease_owner{namespace=~"$namespace", '
                     'lease=~"$election"})', "{{lease}}: {{lease_holder}}", instant=True)],
             text_mode="name", color_mode="background", steps=[(BLUE, None)], no_value="no kube-state-metrics data"))
    # kube-state-metrics and cAdvisor series carry the pod's namespace and name, not the election:
    # keep the elector pods of the selected elections (their own series name namespace and pod).
    pods = f"on (namespace, pod) group_left () group by (namespace, pod) (elector_build_info{{{S}}})"
    ksm = 'namespace=~"$namespace", container="elector"'
    add(timeseries(25, "Container restarts and OOM kills (kube-state-metrics only)",
                   "Restarts of the elector container per step, and whether its last termination was an "
                   "OOM kill (kube_pod_container_status_restarts_total, "
                   "kube_pod_container_status_last_terminated_reason; needs kube-state-metrics).",
                   (12, 58, 12, 8),
                   [target(f"sum by (namespace, pod) ((kube_pod_container_status_restarts_total{{{ksm}}} - "
                           f"kube_pod_container_status_restarts_total{{{ksm}}} offset $__interval) >= 0) * {pods}",
                           "{{pod}} restarts"),
                    target(f'max by (namespace, pod) (kube_pod_container_status_last_terminated_reason{{{ksm}, reason="OOMKilled"}}) * {pods}',
                           "{{pod}} last exit OOMKilled", "B")],
                   draw="bars", decimals=0))
    add(timeseries(26, "CPU throttling (cAdvisor only)",
                   "Share of CFS periods in which the elector container was throttled "
                   "(container_cpu_cfs_throttled_periods_total / container_cpu_cfs_periods_total from "
                   "the kubelet's cAdvisor; needs that scrape and a CPU limit). A throttled elector "
                   "renews late: see the renew latency and flapping alerts.", (0, 62, 12, 8),
                   [target(f"(sum by (namespace, pod) (rate(container_cpu_cfs_throttled_periods_total{{{ksm}}}[{RI}]))"
                           f" / sum by (namespace, pod) (rate(container_cpu_cfs_periods_total{{{ksm}}}[{RI}]) > 0))"
                           f" * {pods}", "{{pod}}")],
                   unit="percentunit"))

    add_app_health_panels(add)
    add_proxy_panels(add)

    def var(name, label, query):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": f"{name}-var", "qryType": 1},
                "refresh": 2, "sort": 1, "multi": True, "includeAll": True, "allValue": ".*",
                "current": {"text": ["All"], "value": ["$__all"]}, "options": [], "regex": "",
                "hide": 0, "skipUrlSync": False}

    return {
        "id": None,
        "uid": "kube-elector",
        "title": "kube-elector",
        "description": "Leader election with kube-elector: who leads, handovers, renew latency and errors, "
                       "fencing token, elector process resources, the leader-forwarding proxy.",
        "tags": ["kube-elector", "kubernetes", "leader-election"],
        "schemaVersion": 42,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard"}]},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "options": [], "refresh": 1, "regex": "", "hide": 0, "includeAll": False,
             "multi": False, "skipUrlSync": False},
            var("namespace", "Namespace", "label_values(elector_is_leader, namespace)"),
            var("election", "Election", 'label_values(elector_is_leader{namespace=~"$namespace"}, election)'),
        ]},
        "panels": panels,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    want = json.dumps(dashboard(), indent=2) + "\n"
    if args.check:
        have = TARGET.read_text() if TARGET.exists() else ""
        if have != want:
            sys.stderr.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                                       str(TARGET.relative_to(ROOT)), "generated", n=1))
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/ship/gen_dashboard.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
