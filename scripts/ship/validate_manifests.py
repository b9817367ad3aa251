#!/usr/bin/env python3
"""Offline checks of the rendered k8s/ manifests beyond schema validation.

    validate_manifests.py BASE.yaml POD_LABEL.yaml MONITORING.yaml --operator-out OUT.json \
        [--endpointslice ENDPOINTSLICE.yaml] [--proxy PROXY.yaml]

Reads the `kubectl kustomize` output of k8s/, k8s/pod-label/, k8s/monitoring/ (and
k8s/endpointslice/, k8s/proxy/) and checks:
  * the invariants the README promises (probes, security context, downward API, RBAC scope,
    Services, resources), naming the object and field on failure;
  * a model of the Deployment controller's rolling update and of the PDB's eviction arithmetic,
    proving that leader-only readiness neither stalls a rollout nor blocks a drain with the
    shipped settings, and that the settings the README warns about do stall (so the model can fail);
  * writes the Prometheus Operator objects to OUT.json for validate-operator.mjs.
Schema validation of the core kinds is done separately with `kubernetes-validate --strict`.
"""
import argparse
import copy
import json
import math
import re
import sys

import yaml

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    out = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    return out


def one(docs, kind, name, where):
    got = find(docs, kind, name)
    if len(got) != 1:
        fail(f"{where}: expected one {kind}/{name}, found {len(got)}")
        return {}
    return got[0]


def get(obj, path, default=None):
    cur = obj
    for key in path.split("."):
        if isinstance(cur, list):
            try:
                cur = cur[int(key)]
            except (ValueError, IndexError):
                return default
        elif isinstance(cur, dict):
            if key not in cur:
                return default
            cur = cur[key]
        else:
            return default
    return cur


def expect(where, field, got, want):
    if got != want:
        fail(f"{where}: {field} expected {want!r}, got {got!r}")


def container(dep, name, where):
    for c in get(dep, "spec.template.spec.containers", []):
        if c.get("name") == name:
            return c
    fail(f"{where}: no container named {name!r}")
    return {}


def parse_duration(s: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", s)
    if not m:
        raise ValueError(f"unsupported duration {s!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def arg_value(args, flag):
    for a in args:
        if a == flag:
            return ""
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


# --------------------------------------------------------------------------------- invariants
# The elector's readiness path in each variant, and why.
READINESS = {
    "base": ("/readyz", "leadership: the Service routes to the leader alone"),
    "pod-label": ("/readyz/pod-label", "the leader label's truth: the Service selects the label"),
    "endpointslice": ("/livez", "its own health, never leadership: the elector's slice routes to the leader"),
    "proxy": ("/readyz/proxy", "the proxy's health, never leadership: every replica's proxy forwards"),
}


def check_workload(docs, where, mode):
    dep = one(docs, "Deployment", "example-app", where)
    if not dep:
        return
    w = f"{where} Deployment/example-app"
    pod = get(dep, "spec.template.spec")
    psc = pod.get("securityContext", {})
    expect(w, "pod securityContext.runAsNonRoot", psc.get("runAsNonRoot"), True)
    if not isinstance(psc.get("runAsUser"), int) or psc.get("runAsUser") == 0:
        fail(f"{w}: pod securityContext.runAsUser must be a non-zero number, got {psc.get('runAsUser')!r}")
    expect(w, "pod securityContext.seccompProfile.type", get(psc, "seccompProfile.type"), "RuntimeDefault")
    for c in pod.get("containers", []):
        cw = f"{w} container {c.get('name')}"
        sc = c.get("securityContext", {})
        expect(cw, "securityContext.allowPrivilegeEscalation", sc.get("allowPrivilegeEscalation"), False)
        expect(cw, "securityContext.readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem"), True)
        expect(cw, "securityContext.capabilities.drop", get(sc, "capabilities.drop"), ["ALL"])
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if get(c, f"resources.{kind}.{res}") is None:
                    fail(f"{cw}: resources.{kind}.{res} missing")

    el = container(dep, "elector", w)
    args = el.get("args", [])
    election = arg_value(args, "--election")
    if not election:
        fail(f"{w}: elector args need --election=NAME, got {args!r}")
    env = {e["name"]: get(e, "valueFrom.fieldRef.fieldPath") for e in el.get("env", [])}
    expect(w, "elector env POD_NAME fieldRef", env.get("POD_NAME"), "metadata.name")
    expect(w, "elector env POD_NAMESPACE fieldRef", env.get("POD_NAMESPACE"), "metadata.namespace")
    ports = {p.get("name"): p.get("containerPort") for p in el.get("ports", [])}
    expect(w, "elector port elector-http", ports.get("elector-http"), 8080)
    http = arg_value(args, "--http")
    if http is not None and not http.endswith(":8080"):
        fail(f"{w}: --http must listen on port 8080 (the probes and the PodMonitor use it), got {http!r}")

    rp = el.get("readinessProbe", {})
    want_ready, why = READINESS[mode]
    if get(rp, "httpGet.path") != want_ready:
        fail(f"{w}: elector readinessProbe.httpGet.path must be {want_ready} in the {mode} variant ({why}), "
             f"got {get(rp, 'httpGet.path')!r}")
    if mode == "endpointslice":
        check_endpointslice_workload(docs, dep, el, w, where)
    elif mode == "proxy":
        check_proxy_workload(docs, dep, el, w, where)
    else:
        for field, want in (("periodSeconds", 1), ("failureThreshold", 1), ("successThreshold", 1)):
            expect(w, f"elector readinessProbe.{field}", rp.get(field), want)
    expect(w, "elector livenessProbe.httpGet.path", get(el, "livenessProbe.httpGet.path"), "/livez")

    # termination grace must cover the preStop sleep plus the graceful release
    grace = pod.get("terminationGracePeriodSeconds", 30)
    sleep = get(el, "lifecycle.preStop.sleep.seconds", 0)
    shutdown = parse_duration(arg_value(args, "--shutdown-timeout") or "5s")
    if grace < sleep + shutdown + 2:
        fail(f"{w}: terminationGracePeriodSeconds {grace} < preStop sleep {sleep}s + --shutdown-timeout "
             f"{shutdown}s + 2s margin; raise it")
    expect(w, "elector --release-on-shutdown", arg_value(args, "--release-on-shutdown"), "true")

    lease = parse_duration(arg_value(args, "--lease-duration") or "15s")
    renew = parse_duration(arg_value(args, "--renew-deadline") or "10s")
    retry = parse_duration(arg_value(args, "--retry-period") or "2s")
    if not (retry < renew < lease):
        fail(f"{w}: timings must satisfy retry-period < renew-deadline < lease-duration, got {retry}/{renew}/{lease}")
    # the old leader must be out of the endpoints (renew deadline + probe period) before a new
    # leader can take over (lease duration); the margin is left for endpoint propagation
    # (Not for the variants whose readiness is health: there traffic does not follow readiness.)
    if mode in ("base", "pod-label") and renew + rp.get("periodSeconds", 10) * rp.get("failureThreshold", 3) >= lease:
        fail(f"{w}: renew-deadline {renew}s + readiness detection must be < lease-duration {lease}s")

    pod_label = arg_value(args, "--pod-label")
    if mode == "base" and pod_label is not None:
        fail(f"{w}: the base must not use --pod-label")
    if mode == "pod-label" and pod_label != "kube-elector/role":
        fail(f"{w}: the pod-label variant needs --pod-label=kube-elector/role, got {pod_label!r}")

    # Services
    svc = one(docs, "Service", "example-app", where)
    sel = get(svc, "spec.selector", {})
    want_sel = {"app.kubernetes.io/name": "example-app"}
    if mode == "pod-label":
        want_sel["kube-elector/role"] = "leader"
    if mode == "endpointslice":
        want_sel = {}
    expect(f"{where} Service/example-app", "spec.selector", sel, want_sel)
    if mode == "proxy":
        targets = [p.get("targetPort") for p in get(svc, "spec.ports", [])]
        if targets != ["http"]:
            fail(f"{where} Service/example-app: targetPort must be the proxy's port `http`, got {targets!r} "
                 f"(a request that bypasses the proxy reaches whichever pod, leader or not)")
    msvc = one(docs, "Service", "example-app-elector-metrics", where)
    expect(f"{where} Service/example-app-elector-metrics", "spec.publishNotReadyAddresses",
           get(msvc, "spec.publishNotReadyAddresses"), True)
    labels = get(dep, "spec.template.metadata.labels", {})
    if labels.get("kube-elector/election") != election:
        fail(f"{w}: pod label kube-elector/election must equal --election ({election!r}), got "
             f"{labels.get('kube-elector/election')!r} (the PodMonitor selects on it)")

    # RBAC: exactly what the lock type needs
    rules = [r for role in find(docs, "Role") for r in role.get("rules", [])]
    def granted(group, resource, verb, name=None):
        for r in rules:
            if group in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r.get("verbs", []):
                names = r.get("resourceNames")
                if not names or name in names:
                    return r
        return None
    for verb in ("get", "watch", "update"):
        r = granted("coordination.k8s.io", "leases", verb, election)
        if not r:
            fail(f"{where}: RBAC lacks {verb} on leases/{election}")
        elif not r.get("resourceNames"):
            fail(f"{where}: RBAC {verb} on leases should be limited by resourceNames [{election}]")
    if not granted("coordination.k8s.io", "leases", "create"):
        fail(f"{where}: RBAC lacks create on leases")
    for group in ("", "events.k8s.io"):
        if not granted(group, "events", "create"):
            fail(f"{where}: RBAC lacks create on events in group {group!r}")
    allowed = {("coordination.k8s.io", "leases"), ("", "events"), ("events.k8s.io", "events")}
    if mode == "pod-label":
        allowed.add(("", "pods"))
        for verb in ("get", "patch"):
            if not granted("", "pods", verb, "any-pod"):
                fail(f"{where}: the pod-label variant needs {verb} on pods")
    if mode == "endpointslice":
        allowed.add(("discovery.k8s.io", "endpointslices"))
        slice_name = arg_value(args, "--endpoint-slice")
        for verb in ("get", "update"):
            r = granted("discovery.k8s.io", "endpointslices", verb, slice_name)
            if not r:
                fail(f"{where}: RBAC lacks {verb} on endpointslices/{slice_name}")
            elif r.get("resourceNames") != [slice_name]:
                fail(f"{where}: RBAC {verb} on endpointslices should be limited by resourceNames [{slice_name}]")
        if not granted("discovery.k8s.io", "endpointslices", "create"):
            fail(f"{where}: RBAC lacks create on endpointslices")
    for r in rules:
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                if (g, res) not in allowed:
                    fail(f"{where}: RBAC grants {r.get('verbs')} on {g or 'core'}/{res}, which {mode} does not need")
        extra = set(r.get("verbs", [])) - {"get", "watch", "update", "create", "patch"}
        if extra or "*" in r.get("verbs", []):
            fail(f"{where}: RBAC verbs {sorted(extra)} are more than needed")
        if ("", "pods") in [(g, res) for g in r.get("apiGroups", []) for res in r.get("resources", [])]:
            if set(r.get("verbs", [])) - {"get", "patch"}:
                fail(f"{where}: pods need only get/patch, got {r.get('verbs')}")
    return dep


def check_endpointslice_workload(docs, dep, el, w, where):
    """The EndpointSlice variant: readiness is the app's, the elector writes the Service's slice."""
    args = el.get("args", [])
    app = container(dep, "app", w)
    if not app.get("readinessProbe"):
        fail(f"{w}: the app container needs its own readinessProbe (every pod's readiness is its health)")
    env = {e["name"]: get(e, "valueFrom.fieldRef.fieldPath") for e in el.get("env", [])}
    expect(w, "elector env POD_IP fieldRef", env.get("POD_IP"), "status.podIP")
    slice_name = arg_value(args, "--endpoint-slice")
    service = arg_value(args, "--endpoint-slice-service")
    ports = arg_value(args, "--endpoint-slice-ports") or ""
    if not slice_name:
        fail(f"{w}: the EndpointSlice variant needs --endpoint-slice=NAME")
    svc = one(docs, "Service", service or "", where)
    if svc and get(svc, "spec.selector"):
        fail(f"{where} Service/{service}: must have no selector (its endpoints are the elector's slice)")
    svc_ports = {p.get("name") for p in get(svc, "spec.ports", [])}
    app_ports = {p.get("containerPort") for p in app.get("ports", [])}
    for item in filter(None, ports.split(",")):
        name, _, rest = item.rpartition(":")
        number = int(rest.split("/")[0])
        if name not in svc_ports:
            fail(f"{w}: --endpoint-slice-ports names {name!r}, which Service/{service} has no port of "
                 f"(kube-proxy matches slice ports to Service ports by name; Service ports: {sorted(svc_ports)})")
        if number not in app_ports:
            fail(f"{w}: --endpoint-slice-ports port {number} is no container port of the app ({sorted(app_ports)})")


def expect_caught(docs, variant, mutations):
    """Each mutation of a variant's rendered manifests must fail check_workload (so the checks can
    fail): a negative control per rule."""
    global failures
    for name, mutate in mutations.items():
        mutant = copy.deepcopy(docs)
        mutate(mutant)
        saved, failures = failures, []
        check_workload(mutant, "mutant", variant)
        caught, failures = bool(failures), saved
        if not caught:
            fail(f"k8s/{variant}: the checks miss a mutation: {name}")
    print(f"  k8s/{variant}: the checks catch each of {len(mutations)} mutations "
          f"({', '.join(mutations)})")


def endpointslice_mutations(docs):
    """Negative controls: each mutation of the EndpointSlice render must fail the checks."""

    def elector(d):
        return next(c for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "elector")

    def service(mutant):
        return next(d for d in mutant if d["kind"] == "Service" and d["metadata"]["name"] == "example-app")

    def deployment(mutant):
        return next(d for d in mutant if d["kind"] == "Deployment")

    def role_rule(mutant):
        return next(r for d in mutant if d["kind"] == "Role" for r in d["rules"]
                    if "endpointslices" in r.get("resources", []) and r.get("resourceNames"))

    mutations = {
        "Service with a selector": lambda m: service(m)["spec"].update(selector={"app.kubernetes.io/name": "example-app"}),
        "slice port named unlike the Service port": lambda m: elector(deployment(m)).update(
            args=[a.replace("--endpoint-slice-ports=http:", "--endpoint-slice-ports=web:")
                  for a in elector(deployment(m))["args"]]),
        "leader-only readiness": lambda m: elector(deployment(m))["readinessProbe"]["httpGet"].update(path="/readyz"),
        "no POD_IP": lambda m: elector(deployment(m)).update(
            env=[e for e in elector(deployment(m))["env"] if e["name"] != "POD_IP"]),
        "get/update on every slice": lambda m: role_rule(m).pop("resourceNames"),
    }
    expect_caught(docs, "endpointslice", mutations)


def host_port(addr):
    host, _, port = (addr or "").rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else None


def check_proxy_workload(docs, dep, el, w, where):
    """The proxy variant: clients reach the elector's proxy on `http`, the app only on loopback."""
    args = el.get("args", [])
    expect(w, "elector readinessProbe.httpGet.port", get(el, "readinessProbe.httpGet.port"), "elector-http")
    listen_host, listen_port = host_port(arg_value(args, "--proxy-listen"))
    up_host, up_port = host_port(arg_value(args, "--proxy-upstream"))
    if listen_port is None:
        fail(f"{w}: the proxy variant needs --proxy-listen=0.0.0.0:PORT, got {arg_value(args, '--proxy-listen')!r}")
    elif listen_host not in ("0.0.0.0", "::"):
        fail(f"{w}: --proxy-listen must listen on every address (clients and the other replicas reach it at "
             f"the pod IP), got host {listen_host!r}")
    ports = {p.get("name"): p.get("containerPort") for p in el.get("ports", [])}
    if ports.get("http") != listen_port:
        fail(f"{w}: the elector's port `http` (the Service's targetPort) must be the --proxy-listen port "
             f"{listen_port}, got {ports.get('http')!r}")
    if up_host not in ("127.0.0.1", "::1", "localhost"):
        fail(f"{w}: --proxy-upstream must be the app on loopback (127.0.0.1:PORT), got "
             f"{arg_value(args, '--proxy-upstream')!r}: anything reachable from outside the pod lets "
             f"requests bypass the proxy and the leader's claim check")
    app = container(dep, "app", w)
    app_ports = {p.get("name"): p.get("containerPort") for p in app.get("ports", [])}
    if "http" in app_ports or up_port in app_ports.values():
        fail(f"{w}: the app container must not expose a port to the Service or the network ({app_ports}); it "
             f"listens on loopback behind the proxy")
    if up_port is not None and f"127.0.0.1:{up_port}" not in " ".join(app.get("command", []) + app.get("args", [])):
        fail(f"{w}: the app must listen on 127.0.0.1:{up_port} (--proxy-upstream), got command "
             f"{app.get('command')!r}")
    if not app.get("readinessProbe") or not app.get("livenessProbe"):
        fail(f"{w}: the app container needs its own probes (every pod's readiness is its health)")
    env = {e["name"]: get(e, "valueFrom.fieldRef.fieldPath") for e in el.get("env", [])}
    if arg_value(args, "--advertise-address") is None:
        expect(w, "elector env POD_IP fieldRef (the default --advertise-address)", env.get("POD_IP"),
               "status.podIP")
    # Followers forward to the leader's proxy at its pod IP: the policy must admit the replicas.
    labels = get(dep, "spec.template.metadata.labels", {})
    for np in find(docs, "NetworkPolicy"):
        sel = get(np, "spec.podSelector.matchLabels", {})
        if any(labels.get(k) != v for k, v in sel.items()):
            continue
        if "Ingress" not in get(np, "spec.policyTypes", ["Ingress"]):
            continue
        if not any(proxy_rule_admits_replicas(r, labels, listen_port) for r in get(np, "spec.ingress", [])):
            fail(f"{where} NetworkPolicy/{np['metadata']['name']}: no ingress rule admits the replicas "
                 f"(podSelector matching {labels}) to the proxy port `http` ({listen_port}); followers could "
                 f"not forward to the leader")


def proxy_rule_admits_replicas(rule, labels, port):
    """Whether one ingress rule admits pods with `labels` to the proxy port."""
    ports = rule.get("ports")
    if ports and not any(p.get("port") in ("http", port) and p.get("protocol", "TCP") == "TCP" for p in ports):
        return False
    peers = rule.get("from")
    if not peers:
        return True
    for peer in peers:
        if "namespaceSelector" in peer or "ipBlock" in peer:
            continue
        sel = get(peer, "podSelector.matchLabels", {})
        if all(labels.get(k) == v for k, v in sel.items()) and not get(peer, "podSelector.matchExpressions"):
            return True
    return False


def proxy_mutations(docs):
    """Negative controls: each mutation of the proxy render must fail the checks."""

    def deployment(m):
        return next(d for d in m if d["kind"] == "Deployment")

    def cont(m, name):
        return next(c for c in deployment(m)["spec"]["template"]["spec"]["containers"] if c["name"] == name)

    def service(m):
        return next(d for d in m if d["kind"] == "Service" and d["metadata"]["name"] == "example-app")

    def policy(m):
        return next(d for d in m if d["kind"] == "NetworkPolicy")

    def set_arg(m, flag, value):
        el = cont(m, "elector")
        el["args"] = [f"{flag}={value}" if a.startswith(flag + "=") else a for a in el["args"]]

    mutations = {
        "leader-only readiness": lambda m: cont(m, "elector")["readinessProbe"]["httpGet"].update(path="/readyz"),
        "Service straight to the app": lambda m: service(m)["spec"]["ports"][0].update(targetPort=8081),
        "app exposed on the pod network": lambda m: cont(m, "app").update(
            ports=[{"name": "app", "containerPort": 8081, "protocol": "TCP"}]),
        "upstream off loopback": lambda m: set_arg(m, "--proxy-upstream", "0.0.0.0:8081"),
        "proxy on loopback only": lambda m: set_arg(m, "--proxy-listen", "127.0.0.1:8000"),
        "no POD_IP": lambda m: cont(m, "elector").update(
            env=[e for e in cont(m, "elector")["env"] if e["name"] != "POD_IP"]),
        "proxy port closed to the replicas": lambda m: policy(m)["spec"].update(ingress=[
            r for r in policy(m)["spec"]["ingress"] if r.get("from") and "namespaceSelector" in r["from"][0]]),
    }
    expect_caught(docs, "proxy", mutations)


# ----------------------------------------------------------------- rollout and PDB arithmetic
def scaled(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        x = int(value[:-1]) * total / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(value)


def simulate_rollout(replicas, max_surge, max_unavailable, leader_only, steps=50):
    """Model of pkg/controller/deployment/rolling.go plus leader election.

    Old and new ReplicaSets hold pods; a pod created in a step is running from the next step on.
    leader_only: only the leader pod is Ready (available); otherwise every running pod is.
    Scaling an RS down deletes not-ready pods first (the ReplicaSet controller's preference).
    Returns (completed, trace)."""
    surge = scaled(max_surge, replicas, True)
    unavail = scaled(max_unavailable, replicas, False)
    old = {"running": replicas, "starting": 0, "leader": True}
    new = {"running": 0, "starting": 0, "leader": False}
    trace = []

    def count(rs):
        return rs["running"] + rs["starting"]

    def available(rs):
        if leader_only:
            return 1 if rs["leader"] else 0
        return rs["running"]

    for step in range(steps):
        before = json.dumps([old, new], sort_keys=True)
        # pods started last step are running now; an election happens among running pods
        for rs in (old, new):
            rs["running"] += rs["starting"]
            rs["starting"] = 0
        if leader_only and not old["leader"] and not new["leader"]:
            if new["running"]:
                new["leader"] = True
            elif old["running"]:
                old["leader"] = True
        # reconcileNewReplicaSet
        total = count(old) + count(new)
        if count(new) < replicas and total < replicas + surge:
            new["starting"] += min(replicas + surge - total, replicas - count(new))
        # reconcileOldReplicaSets
        if count(old):
            all_pods = count(old) + count(new)
            min_available = replicas - unavail
            new_unavailable = count(new) - available(new)
            max_scaled_down = all_pods - min_available - new_unavailable
            if max_scaled_down > 0:
                unhealthy = count(old) - available(old)
                cleaned = min(max_scaled_down, unhealthy)
                take = min(cleaned, old["starting"])
                old["starting"] -= take
                old["running"] -= cleaned - take
                avail = available(old) + available(new)
                if avail > min_available:
                    down = min(count(old), avail - min_available)
                    if down > 0:
                        old["running"] -= down
                        if leader_only and old["leader"] and old["running"] < 1:
                            old["leader"] = False  # the leader pod was deleted: it releases
            if old["running"] <= 0:
                old["leader"] = False
        trace.append((step, count(old), count(new), available(old) + available(new)))
        if count(old) == 0 and new["running"] == replicas and (not leader_only or new["leader"]):
            return True, trace
        if json.dumps([old, new], sort_keys=True) == before:
            return False, trace
    return False, trace


def pdb_allows(pdb_spec, replicas, healthy):
    """disruptionsAllowed of the disruption controller for a Deployment-owned PDB."""
    if "minAvailable" in pdb_spec:
        desired = scaled(pdb_spec["minAvailable"], replicas, True)
    else:
        desired = max(0, replicas - scaled(pdb_spec.get("maxUnavailable", 0), replicas, True))
    return max(0, healthy - desired), desired


def check_disruption(docs, where, mode):
    dep = one(docs, "Deployment", "example-app", where)
    pdb = one(docs, "PodDisruptionBudget", "example-app", where)
    if not dep or not pdb:
        return
    replicas = get(dep, "spec.replicas", 1)
    ru = get(dep, "spec.strategy.rollingUpdate", {})
    surge, unavail = ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%")
    leader_only = mode == "base"
    ok, trace = simulate_rollout(replicas, surge, unavail, leader_only)
    if not ok:
        fail(f"{where}: rollout with maxSurge={surge} maxUnavailable={unavail} stalls "
             f"(step, old, new, available): {trace[-3:]}")
    else:
        print(f"  {where}: rollout completes in {len(trace)} controller steps "
              f"(maxSurge={surge}, maxUnavailable={unavail})")
    if leader_only:
        # negative controls: the settings the README warns about must stall in this model
        for bad in ("25%", replicas - 1):
            stalled_ok, bad_trace = simulate_rollout(replicas, surge, bad, True)
            if stalled_ok:
                fail(f"{where}: model says maxUnavailable={bad} completes with leader-only readiness; "
                     f"the README's reasoning (and this model) is wrong")
            else:
                print(f"  {where}: as expected, maxUnavailable={bad} stalls at "
                      f"(old, new, available)={bad_trace[-1][1:]}")

    spec = pdb.get("spec", {})
    healthy = 1 if leader_only else replicas
    allowed, desired = pdb_allows(spec, replicas, healthy)
    policy = spec.get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
    if allowed < 1:
        fail(f"{where}: PDB allows 0 disruptions with {healthy} healthy of {replicas} "
             f"(desiredHealthy={desired}): the leader's node could never be drained")
    if leader_only:
        follower_ok = policy == "AlwaysAllow" or healthy >= desired
        if not follower_ok:
            fail(f"{where}: followers (never Ready) cannot be evicted: use unhealthyPodEvictionPolicy: AlwaysAllow")
        for bad in ({"maxUnavailable": 1}, {"minAvailable": 1}):
            if pdb_allows(bad, replicas, 1)[0] != 0:
                fail(f"{where}: model says PDB {bad} allows evicting the leader; README reasoning wrong")
        print(f"  {where}: PDB {dict((k, spec[k]) for k in spec if k != 'selector')} -> leader evictable "
              f"(disruptionsAllowed={allowed}); maxUnavailable: 1 would give 0")
    else:
        if allowed >= replicas:
            fail(f"{where}: PDB allows {allowed} of {replicas} pods down at once: it protects nothing")
        print(f"  {where}: PDB allows {allowed} of {replicas} Ready pods to be evicted at a time")


# ------------------------------------------------------------------------------- monitoring
def check_monitoring(docs, base_dep):
    where = "k8s/monitoring"
    pm = one(docs, "PodMonitor", "kube-elector", where)
    rule = one(docs, "PrometheusRule", "kube-elector", where)
    exprs = get(pm, "spec.selector.matchExpressions", [])
    if {"key": "kube-elector/election", "operator": "Exists"} not in exprs:
        fail(f"{where}: PodMonitor must select pods with label kube-elector/election (Exists), got {exprs}")
    eps = get(pm, "spec.podMetricsEndpoints", [])
    if [e.get("port") for e in eps] != ["elector-http"]:
        fail(f"{where}: PodMonitor must scrape port elector-http, got {[e.get('port') for e in eps]}")
    if eps and not eps[0].get("honorLabels"):
        fail(f"{where}: PodMonitor needs honorLabels: true (the elector's election/namespace labels)")
    alerts = [r.get("alert") for g in get(rule, "spec.groups", []) for r in g.get("rules", [])]
    for want in ("KubeElectorNoLeader", "KubeElectorAbsent", "KubeElectorSplitBrain",
                 "KubeElectorLeadershipFlapping", "KubeElectorRenewLatencyHigh", "KubeElectorRenewFailures",
                 "KubeElectorLeaderStale", "KubeElectorAPIErrors", "KubeElectorLeaderAppUnhealthy",
                 "KubeElectorNoHealthyCandidate", "KubeElectorProxyRejecting"):
        if want not in alerts:
            fail(f"{where}: PrometheusRule lacks alert {want}")
    # The leadership alerts count only samples younger than a bound; it must span at least three
    # of the PodMonitor's scrape intervals, or a healthy leader's sample ages out between scrapes.
    interval = eps[0].get("interval", "30s") if eps else "30s"
    secs = int(interval[:-1]) * {"s": 1, "m": 60}[interval[-1]]
    for r in (r for g in get(rule, "spec.groups", []) for r in g.get("rules", [])):
        for bound in re.findall(r"time\(\) - timestamp\(elector_is_leader\) < (\d+)", r.get("expr", "")):
            if int(bound) < 3 * secs:
                fail(f"{where}: {r.get('alert')} counts samples younger than {bound}s, under three "
                     f"PodMonitor scrape intervals ({interval}); raise it to at least {3 * secs}")
    return [d for d in docs if d.get("apiVersion", "").startswith("monitoring.coreos.com/")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("pod_label")
    ap.add_argument("monitoring")
    ap.add_argument("--operator-out", required=True)
    ap.add_argument("--endpointslice", help="render of k8s/endpointslice/")
    ap.add_argument("--proxy", help="render of k8s/proxy/")
    a = ap.parse_args()
    base, pod_label, mon = load(a.base), load(a.pod_label), load(a.monitoring)
    dep = check_workload(base, "k8s", "base")
    check_workload(pod_label, "k8s/pod-label", "pod-label")
    check_disruption(base, "k8s", "base")
    check_disruption(pod_label, "k8s/pod-label", "pod-label")
    endpointslice = load(a.endpointslice) if a.endpointslice else []
    if a.endpointslice:
        check_workload(endpointslice, "k8s/endpointslice", "endpointslice")
        check_disruption(endpointslice, "k8s/endpointslice", "endpointslice")
        endpointslice_mutations(endpointslice)
    proxy = load(a.proxy) if a.proxy else []
    if a.proxy:
        check_workload(proxy, "k8s/proxy", "proxy")
        check_disruption(proxy, "k8s/proxy", "proxy")
        proxy_mutations(proxy)
    operator = check_monitoring(mon, dep)
    with open(a.operator_out, "w") as f:
        json.dump(operator, f)
    for d in base + pod_label + endpointslice + proxy:
        if d.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            fail(f"{d['kind']}/{d['metadata']['name']} belongs in k8s/monitoring, not in the base")
    if failures:
        for m in failures:
            print(f"FAIL {m}", file=sys.stderr)
        return 1
    print(f"  manifests: invariants hold ({len(base)} base, {len(pod_label)} pod-label, {len(endpointslice)} "
          f"endpointslice, {len(proxy)} proxy, {len(mon)} monitoring objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
