#!/usr/bin/env python3
"""Live proofs for scripts/check-ship.sh: the real binaries, a real Prometheus, a real container.

    live.py container  --image IMG --sim BIN --workdir DIR [--fleet BIN]
    live.py prometheus --elector BIN --sim BIN --workdir DIR [--fleet BIN] [--png grafana/live-proof.png]

The simulator and the electors are started, signalled and stopped by the harness's `fleet`
binary (harness/src/bin/fleet.rs; `cargo build -p kube-elector-harness --bin fleet`), which is
given the binaries above and answers in JSON lines; this script starts no such process itself.

container:  kube-sim over HTTPS; the image runs with the kubeconfig mounted (podman, host
            network); it must lead (/readyz 200 and Lease holder = its id); `podman stop` must
            make it release the Lease (holderIdentity "") and exit 0. Also inspects the image
            (size, user, entrypoint, port, OCI labels, no shell inside).
prometheus: kube-sim over plain HTTP, three electors with short timings, Prometheus scraping them
            every second through k8s/monitoring/prometheus.yml's relabelling (Kubernetes SD swapped
            for static targets carrying the same __meta labels, plus decoys it must drop; and a
            fixture target with kube-state-metrics- and cAdvisor-shaped series), a
            graceful (SIGTERM) and a crash (SIGKILL) failover, then every dashboard query and every
            alert expression through Prometheus's HTTP API with per-panel expectations. Each
            elector runs its proxy (--proxy-listen) in front of a stand-in application, and a
            client sends requests through the proxies the whole time (ProxyLoad): none may fail
            across the graceful handover; during the crash, a burst at one follower past
            --proxy-queue-limit must be answered 503 with Retry-After.
Everything waits by polling with generous deadlines; nothing sleeps in place of an event.
Logs: <workdir>/fleet.log (the fleet and the simulator), <workdir>/<id>.log (each elector).
Figures measured are printed as `figure: name = value` lines.
"""
import argparse
import json
import math
import os
import pathlib
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Sanity bounds on request rates in the live run (retry period 500ms, 3 electors): the leader
# renews ~2/s and followers on a watch make no requests, so these leave a wide margin.
RENEW_RATE_MAX = 10.0
API_RATE_MAX = 20.0
PROCS: list[subprocess.Popen] = []  # processes this script starts itself (Prometheus)
FLEETS: list = []  # the fleet binaries (simulator and electors)


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(f"  {msg}", flush=True)


def figure(name: str, value) -> None:
    print(f"  figure: {name} = {value}", flush=True)


# ------------------------------------------------------------------------------------ helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0):
    """(status, body) or (None, error text) when there is no HTTP answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def wait_for(what: str, fn, timeout: float, interval: float = 0.1):
    """Poll fn() until it returns a truthy value; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def spawn(cmd, log_path: pathlib.Path, env=None, stdout=None) -> subprocess.Popen:
    f = open(log_path, "ab")
    p = subprocess.Popen(cmd, stdout=stdout or f, stderr=f, env=env, start_new_session=True)
    PROCS.append(p)
    return p


def cleanup() -> None:
    for fleet in FLEETS:
        fleet.close()
    for p in PROCS:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10
    for p in PROCS:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def default_fleet() -> str:
    """The harness's fleet binary: $FLEET_BIN, else the debug build in the target directory."""
    if os.environ.get("FLEET_BIN"):
        return os.environ["FLEET_BIN"]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return str(target / "debug" / "fleet")


class Fleet:
    """The simulator and electors, run by the harness's `fleet` binary: it prints a `ready` JSON
    line (simulator URL, kubeconfig directory, electors' addresses) and answers `term ID`,
    `kill ID` and `start ID` on stdin with one JSON line each; closing stdin stops everything."""

    def __init__(self, a, workdir: pathlib.Path, clients, *, plain_http: bool, sim_only=False,
                 election="test", pod_env=False, flags=(), stand_in_app=False, proxy=False):
        cmd = [a.fleet, "--sim", a.sim, "--workdir", str(workdir), "--clients", ",".join(clients),
               "--election", election]
        if getattr(a, "elector", None):
            cmd += ["--elector", a.elector]
        if plain_http:
            cmd.append("--plain-http")
        if sim_only:
            cmd.append("--sim-only")
        if pod_env:
            cmd.append("--pod-env")
        if stand_in_app:
            cmd.append("--stand-in-app")
        if proxy:
            cmd.append("--proxy")
        cmd += ["--", *flags]
        self.log_path = workdir / "fleet.log"
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=open(self.log_path, "ab"), text=True, start_new_session=True)
        except OSError as e:
            raise Failure(f"cannot run the fleet binary {a.fleet}: {e}; build it with "
                          "`cargo build -p kube-elector-harness --bin fleet` or pass --fleet") from e
        FLEETS.append(self)
        self.lines: queue.Queue = queue.Queue()

        def reader():
            for line in self.proc.stdout:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        self.ready = self.answer("ready", 60)
        self.url = self.ready["sim"]["url"]
        self.kdir = pathlib.Path(self.ready["sim"]["kubeconfig_dir"])

    def answer(self, what: str, timeout: float) -> dict:
        """The next JSON line; fails on an error answer, on silence or when the fleet has gone."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise Failure(f"fleet: no {what} answer within {timeout:.0f}s; see {self.log_path}") from None
        if line is None:
            self.proc.wait(timeout=10)
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise Failure(f"fleet exited ({self.proc.returncode}) before its {what} answer:\n{tail}")
        got = json.loads(line)
        if got.get("event") == "error":
            raise Failure(f"fleet: {got.get('error')}")
        if got.get("event") != what:
            raise Failure(f"fleet: expected a {what} answer, got {got}")
        return got

    def command(self, verb: str, ident: str, timeout: float = 60) -> dict:
        self.proc.stdin.write(f"{verb} {ident}\n")
        self.proc.stdin.flush()
        return self.answer("started" if verb == "start" else "exited", timeout)

    def close(self) -> None:
        """End of input: the fleet stops every elector and the simulator, then exits."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def sim_admin_get(url: str, path: str):
    """GET an admin path; the admin API lives on the same listener as the Kubernetes API."""
    ctx = None
    if url.startswith("https://"):
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url + path, timeout=3, context=ctx) as r:
            return json.loads(r.read().decode())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as e:
        raise Failure(f"GET {url}{path}: {e}") from e


def find_lease(url: str, name: str, namespace: str = "default"):
    objs = sim_admin_get(url, "/sim/objects")
    if isinstance(objs, dict):  # tolerate {"items": [...]} as well as a bare array
        objs = objs.get("items", [])
    for o in objs:
        md = o.get("metadata", {})
        if o.get("kind") == "Lease" and md.get("name") == name and md.get("namespace", namespace) == namespace:
            return o
    return None


def holder(url: str, name: str):
    lease = find_lease(url, name)
    if lease is None:
        return "<no lease>"
    return (lease.get("spec") or {}).get("holderIdentity")


def ready(port: int) -> bool:
    return http_get(f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200


# ---------------------------------------------------------------------------------- container
def podman(*args, check=True, capture=True):
    res = subprocess.run(["podman", *args], capture_output=capture, text=True)
    if check and res.returncode != 0:
        raise Failure(f"podman {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def cmd_container(a) -> None:
    workdir = pathlib.Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    election, ident = "ship-container", "elector-0"

    info = json.loads(podman("image", "inspect", a.image).stdout)[0]
    size = info.get("Size", 0)
    figure("image size (bytes)", size)
    if not 0 < size < 20 * 1024 * 1024:
        raise Failure(f"image {a.image} is {size} bytes; expected under 20 MB")
    cfg = info.get("Config", {})
    checks = {"User": (cfg.get("User"), "65532:65532"), "Entrypoint": (cfg.get("Entrypoint"), ["/kube-elector"]),
              "ExposedPorts": (sorted((cfg.get("ExposedPorts") or {}).keys()), ["8080/tcp"])}
    for field, (got, want) in checks.items():
        if got != want:
            raise Failure(f"image {field}: expected {want!r}, got {got!r}")
    labels = cfg.get("Labels") or {}
    for key in ("title", "description", "source", "licenses", "version", "revision"):
        if not labels.get(f"org.opencontainers.image.{key}"):
            raise Failure(f"image lacks label org.opencontainers.image.{key}; labels: {sorted(labels)}")
    # the filesystem: the binary and nothing to run a shell with
    cid = podman("create", a.image).stdout.strip()
    try:
        listing = subprocess.run(f"podman export {cid} | tar -t", shell=True, capture_output=True, text=True)
    finally:
        podman("rm", "-f", cid, check=False)
    files = [f.rstrip("/") for f in listing.stdout.split() if f and not f.endswith("/")]
    if "kube-elector" not in files or any(f.endswith(("bin/sh", "busybox")) for f in files):
        raise Failure(f"image files should be just /kube-elector, got {files}")
    log(f"image: {size / 1e6:.1f} MB, user 65532:65532, files {files}")

    fleet = Fleet(a, workdir, [ident], plain_http=False, sim_only=True, election=election)
    url, kdir = fleet.url, fleet.kdir
    log(f"kube-sim (HTTPS) at {url}, started by the harness's fleet binary")
    os.chmod(workdir, 0o755)
    os.chmod(kdir, 0o755)
    for f in kdir.iterdir():
        os.chmod(f, 0o644)
    port = free_port()
    name = f"ship-elector-{os.getpid()}"
    podman("run", "-d", "--name", name, "--network=host", "-v", f"{kdir}:/kube:ro", a.image,
                 "--election", election, "--namespace", "default", "--id", ident,
                 "--kubeconfig", f"/kube/{ident}.kubeconfig", "--http", f"127.0.0.1:{port}",
                 "--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms",
                 "--log-format", "json")
    try:
        t0 = time.monotonic()
        wait_for(f"container /readyz on :{port} to answer 200", lambda: ready(port), 60)
        figure("container time to lead (s)", round(time.monotonic() - t0, 2))
        got = holder(url, election)
        if got != ident:
            raise Failure(f"Lease {election} holder: expected {ident!r}, got {got!r}")
        status = http_get(f"http://127.0.0.1:{port}/status")
        log(f"container leads: /readyz 200, Lease holder {got!r}; /status {status[1][:160]}")
        t0 = time.monotonic()
        podman("stop", "-t", "15", name)
        figure("podman stop duration (s)", round(time.monotonic() - t0, 2))
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        if state.get("ExitCode") != 0:
            raise Failure(f"container exit code after SIGTERM: expected 0, got {state.get('ExitCode')} "
                          f"(OOMKilled={state.get('OOMKilled')})")
        lease = find_lease(url, election)
        hid = (lease or {}).get("spec", {}).get("holderIdentity")
        if lease is None or hid not in ("", None):
            raise Failure(f"after SIGTERM the Lease should be released (holderIdentity \"\"), got "
                          f"{json.dumps((lease or {}).get('spec'))}")
        log(f"podman stop: exit code 0, Lease released (holderIdentity {hid!r})")
    except Failure:
        print(podman("logs", name, check=False).stdout[-3000:], file=sys.stderr)
        print(podman("logs", name, check=False).stderr[-3000:], file=sys.stderr)
        raise
    finally:
        podman("rm", "-f", name, check=False)


# --------------------------------------------------------------------------------- prometheus
class Prom:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params):
        q = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.base}{path}?{q}", timeout=10)
        if status != 200:
            raise Failure(f"Prometheus {path} {params}: HTTP {status}: {body[:300]}")
        data = json.loads(body)
        if data.get("status") != "success":
            raise Failure(f"Prometheus {path} {params}: {data}")
        return data["data"]

    def query(self, expr: str):
        return self.api("/api/v1/query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: str = "1s"):
        return self.api("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)["result"]


def values(result):
    out = []
    for r in result:
        v = r.get("value", [None, "NaN"])[1]
        out.append(float(v))
    return out


class Elector:
    """One elector of the fleet: its id, its port (kept across restarts: Prometheus scrapes it)."""

    def __init__(self, fleet: Fleet, workdir: pathlib.Path, info: dict):
        self.fleet, self.workdir, self.ident = fleet, workdir, info["id"]
        self.port = int(info["addr"].rsplit(":", 1)[1])
        # With the fleet's --proxy: where this elector's proxy listens (kept across restarts).
        self.proxy_port = int(info["proxy"].rsplit(":", 1)[1]) if "proxy" in info else None
        self.alive = True
        # Taken out of the client load before it is stopped (as the kubelet's preStop and endpoint
        # removal take a terminating pod out of a Service), put back once its proxy is ready.
        self.in_load = False
        self.wait_live()

    def wait_live(self):
        wait_for(f"{self.ident} /livez", lambda: http_get(f"http://127.0.0.1:{self.port}/livez")[0] == 200, 30)

    def start(self):
        got = self.fleet.command("start", self.ident)
        port = int(got["addr"].rsplit(":", 1)[1])
        if port != self.port:
            raise Failure(f"{self.ident} restarted on port {port}, not its old {self.port}; see {self.workdir}/{self.ident}.log")
        proxy = got.get("proxy")
        if self.proxy_port is not None and (proxy is None or int(proxy.rsplit(":", 1)[1]) != self.proxy_port):
            raise Failure(f"{self.ident} restarted with its proxy at {proxy}, not on its old port {self.proxy_port}")
        self.alive = True
        self.wait_live()

    def stop(self, verb: str) -> dict:
        """`term` (SIGTERM, then waits for the exit) or `kill` (SIGKILL); the exit as the fleet saw it."""
        got = self.fleet.command(verb, self.ident)
        self.alive = False
        return got

    def ready(self) -> bool:
        return ready(self.port)

    def proxy_ready(self) -> bool:
        """/readyz/proxy: this replica's proxy listens and can place requests (the k8s/proxy probe)."""
        return http_get(f"http://127.0.0.1:{self.port}/readyz/proxy")[0] == 200


class ProxyLoad:
    """A client sending GET / through the electors' proxies, one request at a time, round robin
    over the electors in the load (Elector.in_load), as a Service would spread them. Every
    answer is recorded: (sent, answered, ident, status or None, Retry-After, body or error)."""

    def __init__(self, electors):
        self.electors = electors
        self.results: list = []
        self.current = None  # the elector a request is in flight to
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def send(port: int, timeout: float = 15.0):
        """(status or None, Retry-After, body or error) of one GET / through a proxy."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as r:
                return r.status, r.headers.get("Retry-After"), r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Retry-After"), e.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as e:
            return None, None, str(e)

    def run(self):
        while not self.stopped.is_set():
            targets = [e for e in self.electors if e.in_load]
            if not targets:
                self.stopped.wait(0.05)
                continue
            for e in targets:
                with self.lock:
                    if not e.in_load or self.stopped.is_set():
                        continue
                    self.current = e
                t0 = time.time()
                status, retry_after, body = self.send(e.proxy_port)
                with self.lock:
                    self.current = None
                    self.results.append((t0, time.time(), e.ident, status, retry_after, body))
                # At most ~250 requests/s: enough for every panel, little CPU taken from renewals.
                self.stopped.wait(0.004)

    def take_out(self, elector):
        """Stop sending to `elector` and wait for the request in flight to it, if any."""
        with self.lock:
            elector.in_load = False
        wait_for(f"the request in flight to {elector.ident}'s proxy to finish",
                 lambda: self.current is not elector, 30, 0.01)

    def put_back(self, elector):
        wait_for(f"{elector.ident} /readyz/proxy 200", elector.proxy_ready, 30)
        elector.in_load = True

    def answered_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for r in self.results if r[0] >= t)

    def between(self, t0: float, t1: float):
        with self.lock:
            return [r for r in self.results if r[0] >= t0 and r[0] < t1]

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=30)


def leader_of(electors):
    leaders = [e for e in electors if e.alive and e.ready()]
    return leaders[0] if len(leaders) == 1 else None


def cmd_prometheus(a) -> None:
    workdir = pathlib.Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    election, ns = "ship-live", "default"
    idents = ["elector-0", "elector-1", "elector-2"]
    t_start = time.time()
    # Each elector checks a healthy stand-in application (--app-health), so the application
    # health series and their dashboard panel are proven here too; and proxies requests to it
    # (--proxy-listen), for the proxy row. A queue of one request per proxy makes a burst of
    # concurrent requests during the crash failover exceed it: the rejections the panels show.
    fleet = Fleet(a, workdir, idents, plain_http=True, election=election, pod_env=True,
                  flags=["--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms",
                         "--proxy-queue-limit", "1"],
                  stand_in_app=True, proxy=True)
    url = fleet.url
    log(f"kube-sim (plain HTTP) at {url} and {len(idents)} electors, started by the harness's fleet binary")
    electors = [Elector(fleet, workdir, info) for info in fleet.ready["electors"]]
    if [e.ident for e in electors] != idents:
        raise Failure(f"fleet started {[e.ident for e in electors]}, expected {idents}")
    first = wait_for("exactly one elector with /readyz 200", lambda: leader_of(electors), 30)
    if holder(url, election) != first.ident:
        raise Failure(f"/readyz says {first.ident} leads but the Lease holder is {holder(url, election)!r}")
    log(f"{first.ident} leads (readyz and Lease agree)")
    lint_real_scrapes(electors, first)

    # Prometheus with the shipped scrape job: Kubernetes SD replaced by static targets that carry
    # the __meta labels Kubernetes SD would set, plus decoys the relabelling must drop.
    shipped = yaml.safe_load((ROOT / "k8s/monitoring/prometheus.yml").read_text())
    job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "kube-elector")
    job.pop("kubernetes_sd_configs")
    def meta(pod, port_name="elector-http", present=True, phase="Running"):
        m = {"__meta_kubernetes_namespace": ns, "__meta_kubernetes_pod_name": pod,
             "__meta_kubernetes_pod_container_name": "elector", "__meta_kubernetes_pod_container_port_name": port_name,
             "__meta_kubernetes_pod_phase": phase, "__meta_kubernetes_pod_node_name": "node-" + pod[-1]}
        if present:
            m["__meta_kubernetes_pod_labelpresent_kube_elector_election"] = "true"
        return m
    statics = [{"targets": [f"127.0.0.1:{e.port}"], "labels": meta(e.ident)} for e in electors]
    p0 = electors[0].port
    statics += [{"targets": [f"127.0.0.1:{p0}"], "labels": meta("decoy-app-port", port_name="http")},
                {"targets": [f"127.0.0.1:{p0}"], "labels": meta("decoy-unlabelled", present=False)},
                {"targets": [f"127.0.0.1:{p0}"], "labels": meta("decoy-succeeded", phase="Succeeded")}]
    job["static_configs"] = statics
    job["scrape_interval"], job["scrape_timeout"] = "1s", "900ms"
    fixture = ClusterFixture(ns, election, idents)
    fixture.holder = first.ident
    fixture_job = {"job_name": "cluster-fixture", "honor_labels": True, "scrape_interval": "1s",
                   "scrape_timeout": "900ms", "static_configs": [{"targets": [f"127.0.0.1:{fixture.port}"]}]}
    rules_copy = workdir / "kube-elector.rules.yml"
    rules_copy.write_text((ROOT / "k8s/monitoring/kube-elector.rules.yml").read_text())
    cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
           "rule_files": [str(rules_copy)], "scrape_configs": [job, fixture_job]}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    pport = free_port()
    spawn(["prometheus", f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'tsdb'}",
           f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.retention.time=1h"],
          workdir / "prometheus.log")
    prom = Prom(pport)
    wait_for("Prometheus /-/ready", lambda: http_get(f"{prom.base}/-/ready")[0] == 200, 60, 0.2)
    t_prom = time.time()
    sel = f'namespace="{ns}", election="{election}"'
    wait_for("3 scraped elector_is_leader series summing to 1",
             lambda: (lambda r: len(r) == 3 and sum(values(r)) == 1)(prom.query(f"elector_is_leader{{{sel}}}")),
             60, 0.25)
    targets = prom.api("/api/v1/targets")
    active = sorted(t["labels"].get("pod") for t in targets["activeTargets"]
                    if t["labels"].get("job") == "kube-elector")
    if active != idents:
        raise Failure(f"prometheus.yml relabelling: expected active targets {idents}, got {active}")
    dropped = len(targets.get("droppedTargets", []))
    if dropped < 3:
        raise Failure(f"prometheus.yml relabelling should drop the 3 decoy targets, dropped {dropped}")
    log(f"Prometheus scrapes {active} through prometheus.yml's relabelling; {dropped} decoys dropped")

    def recorded_leading(ident):
        """Prometheus holds >= 3 samples (3 s) of `ident` leading: the timeline shows a stable leader."""
        r = prom.query(f'sum_over_time(elector_is_leader{{{sel}, pod="{ident}"}}[10s])')
        return bool(r) and float(r[0]["value"][1]) >= 3

    wait_for(f"Prometheus to record {first.ident} leading for 3 scrapes", lambda: recorded_leading(first.ident), 30, 0.25)

    # Requests through every proxy from now to the end of the run.
    load = ProxyLoad(electors)
    for e in electors:
        load.put_back(e)
    t_load = time.time()
    wait_for("100 requests answered through the proxies", lambda: load.answered_since(t_load) >= 100, 60, 0.1)

    # Failover 1: SIGTERM the leader (graceful release), then start it again.
    old = first
    load.take_out(old)
    t0, t_term = time.monotonic(), time.time()
    exit = old.stop("term")
    if exit.get("code") != 0:
        raise Failure(f"{old.ident} exit after SIGTERM: expected code 0, got {exit}")
    new = wait_for("a new leader after SIGTERM", lambda: leader_of(electors), 15, 0.05)
    figure("handover after SIGTERM (s)", round(time.monotonic() - t0, 2))
    if new is old:
        raise Failure("the terminated elector still leads")
    log(f"SIGTERM {old.ident}: exit 0, {new.ident} leads")
    # The graceful handover through the proxies: from the SIGTERM until 50 more requests were
    # answered after the new leader's /readyz, every request succeeds (they wait for the leader).
    t_led = time.time()
    wait_for("50 requests answered through the new leader", lambda: load.answered_since(t_led) >= 50, 60, 0.05)
    across = load.between(t_term, time.time())
    failed = [r for r in across if r[3] != 200]
    figure("requests through the proxies across the graceful handover (sent, failed)", (len(across), len(failed)))
    if failed:
        raise Failure(f"{len(failed)} of {len(across)} requests through the proxies failed across the graceful "
                      f"handover (a graceful handover should cost none): {failed[:5]}")
    fixture.holder = new.ident
    events = [(t_term, f"SIGTERM {old.ident}")]
    wait_for(f"Prometheus to record {new.ident} leading for 3 scrapes", lambda: recorded_leading(new.ident), 30, 0.25)
    old.start()
    load.put_back(old)
    # The restart is counted once Prometheus has the restarted elector's series again, as
    # kube-state-metrics would count it with the pod running (the panels join on them).
    # The per-step restarts panel is checked over the run's 1s steps up to t_end, so the run ends
    # only once Prometheus holds the new count and a step after its sample (`counted` below).
    counted_at = [0.0]
    def rejoined(ident, oom=False):
        wait_for(f"Prometheus to scrape the restarted {ident}",
                 lambda: prom.query(f'elector_build_info{{{sel}, pod="{ident}"}}'), 30, 0.25)
        fixture.restarts[ident] += 1
        if oom:
            fixture.oom[ident] = 1
        want = fixture.restarts[ident]
        def counted():
            r = prom.query(f'timestamp(kube_pod_container_status_restarts_total{{namespace="{ns}", pod="{ident}", '
                           f'container="elector"}} == {want})')
            return float(r[0]["value"][1]) if r else None
        counted_at[0] = wait_for(f"Prometheus to scrape {ident}'s restart count {want}", counted, 30, 0.2)
    rejoined(old.ident)

    # Failover 2: SIGKILL the leader (no release: the others wait out the lease), restart it.
    victim = wait_for("a single leader before SIGKILL", lambda: leader_of(electors), 15)
    load.take_out(victim)
    t0 = time.monotonic()
    t_kill = time.time()
    events.append((t_kill, f"SIGKILL {victim.ident}"))
    victim.stop("kill")
    # Nobody can lead until the lease (3s) runs out: a burst of concurrent requests at one
    # follower's proxy fills its queue of one, and the rest must be answered 503 + Retry-After.
    target = next(e for e in electors if e is not victim)
    burst: list = []
    threads = [threading.Thread(target=lambda: burst.append(ProxyLoad.send(target.proxy_port))) for _ in range(4)]
    for t in threads:
        t.start()
    # A killed process logs no `stopped leading`: its leadership ended by this moment at the latest.
    killed = {victim.ident: time.time()}
    taker = wait_for("a new leader after SIGKILL", lambda: leader_of(electors), 30, 0.05)
    took = time.monotonic() - t0
    t_taken = time.time()
    for t in threads:
        t.join(timeout=30)
    rejected = [b for b in burst if b[0] == 503]
    figure("burst of 4 at one proxy while no one leads (status codes)", sorted(str(b[0]) for b in burst))
    if not rejected or any(not b[1] for b in rejected) or any(b[0] not in (200, 503) for b in burst):
        raise Failure(f"a burst of 4 requests at {target.ident}'s proxy (queue limit 1) with no leader: expected "
                      f"200 for those that waited and 503 with Retry-After for the rest, got {burst}")
    figure("takeover after SIGKILL (s, lease 3s)", round(took, 2))
    if taker is victim:
        raise Failure("the killed elector still leads")
    log(f"SIGKILL {victim.ident}: {taker.ident} took over after {took:.1f}s")
    fixture.holder = taker.ident
    victim.start()
    load.put_back(victim)
    rejoined(victim.ident, oom=True)

    # Steady state: one leader by /readyz, and Prometheus has caught up with it.
    leader = wait_for("a single leader after restarts", lambda: leader_of(electors), 30)
    fixture.holder = leader.ident
    def caught_up():
        r = prom.query(f"max by (pod) (elector_is_leader{{{sel}}}) == 1")
        ups = prom.query('up{job="kube-elector"} == 1')
        return len(ups) == 3 and len(r) == 1 and r[0]["metric"].get("pod") == leader.ident and \
            leader_of(electors) is leader
    wait_for(f"Prometheus to show {leader.ident} as the only leader with 3 targets up", caught_up, 30, 0.25)
    # one more scrape round so every series (and rate windows) include the settled state
    # (and the last 1s step of the range queries falls after the last restart count's sample)
    t_settled = max(time.time(), counted_at[0])
    wait_for("two scrapes after settling",
             lambda: float(prom.query(f'timestamp(elector_is_leader{{{sel}, pod="{leader.ident}"}})')[0]["value"][1])
             > t_settled + 1.0, 15, 0.2)
    t_end = time.time()
    load.stop()
    # A crash may fail a request, a graceful handover none: after the kill, a 503 with Retry-After
    # (no leader yet), or until the takeover a 502 naming the killed proxy (the request was in
    # flight to it and may have been passed on: it is never sent again).
    dead = f"127.0.0.1:{victim.proxy_port} did not answer"
    def crash_failure(r):
        return (r[3] == 503 and r[4] and t_kill <= r[0]) or \
            (r[3] == 502 and r[5].startswith(dead) and t_kill <= r[0] <= t_taken)
    bad = [r for r in load.results if r[3] != 200 and not crash_failure(r)]
    figure("requests through the proxies in the run (all, 503 and 502 during the crash failover)",
           (len(load.results), sum(1 for r in load.results if r[3] == 503),
            sum(1 for r in load.results if r[3] == 502)))
    if bad:
        raise Failure(f"{len(bad)} requests through the proxies failed outside the crash failover, or without "
                      f"Retry-After: {bad[:5]}")
    elapsed = t_end - t_start
    rate_interval = f"{int(elapsed) + 30}s"
    log(f"steady: {leader.ident} leads; run took {elapsed:.0f}s; $__rate_interval := {rate_interval}")

    # ---- every dashboard query ----
    # $__interval is 1s, the scrape interval here (Grafana's step is never finer than it is useful
    # to draw): the per-step panels are also checked over the whole run at that step.
    def dashboard_queries(election_value):
        dq = subprocess.run([sys.executable, str(ROOT / "scripts/ship/dashboard-queries.py"), a.dashboard,
                             "--var", f"namespace={ns}", "--var", f"election={election_value}",
                             "--rate-interval", rate_interval, "--interval", "1s", "--json"],
                            capture_output=True, text=True)
        if dq.returncode != 0:
            raise Failure(f"dashboard-queries.py: {dq.stderr.strip()}")
        return json.loads(dq.stdout)
    queries = dashboard_queries(election)
    dash_panels = {pn["id"]: pn for pn in json.loads(pathlib.Path(a.dashboard).read_text())["panels"]}
    lease = find_lease(url, election) or {}
    lease_transitions = (lease.get("spec") or {}).get("leaseTransitions")
    problems = []
    for q in queries:
        res = prom.query(q["expr"])
        what = f"{q['panel']} [{q['ref']}]"
        vals = values(res)
        if q["kind"] == "panel" and q["panel"].endswith(("(kube-state-metrics only)", "(cAdvisor only)")):
            msg = expect_external(q, res, prom, sel, idents, fixture, t_start, t_end) if res else \
                f"empty result for {q['expr']}"
            if msg:
                problems.append(f"{what}: {msg}")
            else:
                log(f"ok {what} (fixture series shaped like {q['panel'].rsplit('(', 1)[1][:-6]}): "
                    + ", ".join(f"{r['metric'].get('pod') or r['metric'].get('lease_holder')}="
                                f"{float(r['value'][1]):.3g}" for r in res))
            continue
        if not res:
            problems.append(f"{what}: empty result for {q['expr']}")
            continue
        if any(math.isnan(v) or math.isinf(v) for v in vals):
            problems.append(f"{what}: non-finite values {vals} for {q['expr']}")
            continue
        msg = expect_panel(q, res, vals, leader.ident, idents, prom, sel, t_start, t_end, lease_transitions)
        if msg:
            problems.append(f"{what}: {msg}")
        else:
            shown = ", ".join(f"{json.dumps({k: v for k, v in r['metric'].items() if k != '__name__'})}={float(r['value'][1]):.4g}"
                              for r in res[:4])
            log(f"ok {what}: {shown}{' ...' if len(res) > 4 else ''}")
    problems += check_nothing_scraped(prom, dashboard_queries("no-such-election"), dash_panels)
    if problems:
        # keep going: the alert and figure checks below still say something; fail at the end
        print("FAIL dashboard queries against the live Prometheus:\n    " + "\n    ".join(problems), file=sys.stderr)
    else:
        log(f"all {len(queries)} dashboard queries (panels and variables) return sensible data")

    # ---- every alert expression, in steady state ----
    rules = yaml.safe_load(rules_copy.read_text())
    # Every alert is silent in steady state after this run: one leader (NoLeader, SplitBrain,
    # LeaderStale), every candidate scraped (Absent), three acquisitions in all, not more than 3
    # (Flapping), local renewals far under 1 s (RenewLatencyHigh), no failed renewal
    # (RenewFailures), and no API error other than 404/409 (APIErrors). Every stand-in
    # application is healthy and every elector stands (LeaderAppUnhealthy, NoHealthyCandidate).
    # A handful of deliberate proxy rejections among thousands of proxied requests stay far under
    # KubeElectorProxyRejecting's 5% (the "Proxy rejected share" expectation checks the share).
    must_be_empty = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    if len(must_be_empty) != 11:
        raise Failure(f"expected the 11 shipped alerts, found {sorted(must_be_empty)}: update this check")
    for g in rules["groups"]:
        for r in g["rules"]:
            res = prom.query(r["expr"])
            if r["alert"] in must_be_empty and res:
                raise Failure(f"alert {r['alert']} expression is not empty in steady state: {res}")
            log(f"alert {r['alert']}: {'empty' if not res else 'NON-EMPTY ' + json.dumps(res)[:200]}")
    rule_health = [(r["name"], r["health"], r.get("lastError")) for g in prom.api("/api/v1/rules")["groups"]
                   for r in g["rules"]]
    bad_health = [x for x in rule_health if x[1] != "ok"]
    if bad_health:
        raise Failure(f"rules evaluated with errors in Prometheus: {bad_health}")
    firing = [al["labels"]["alertname"] for al in prom.api("/api/v1/alerts")["alerts"] if al["state"] == "firing"]
    if set(firing) & must_be_empty:
        raise Failure(f"alerts firing in steady state: {firing}")
    log(f"{len(rule_health)} rules evaluate with health ok in Prometheus; firing now: {firing or 'none'}")

    # ---- figures ----
    rss = values(prom.query(f"max_over_time(process_resident_memory_bytes{{job=\"kube-elector\"}}[{rate_interval}])"))
    cpu = values(prom.query(f"rate(process_cpu_seconds_total{{job=\"kube-elector\"}}[{rate_interval}])"))
    figure("max RSS per elector (MiB)", [round(v / 2**20, 1) for v in rss])
    figure("CPU per elector (millicores, 500ms retry period)", [round(v * 1000, 1) for v in cpu])
    p99 = values(prom.query(f"histogram_quantile(0.99, sum by (le) (rate(elector_renew_duration_seconds_bucket{{{sel}}}[{rate_interval}])))"))
    figure("renew p99 (ms)", [round(v * 1000, 2) for v in p99])
    api = values(prom.query(f"sum(rate(elector_api_requests_total{{{sel}}}[{rate_interval}]))"))
    figure("API requests/s, all electors", [round(v, 1) for v in api])

    own = own_intervals(workdir, idents, killed, t_start, t_end)
    overlap = max_overlap(own)
    figure("overlap of the electors' own leadership intervals (s)", round(overlap, 3))
    if overlap > 0:
        raise Failure(f"two electors' own leadership intervals overlap by {overlap:.3f}s: {own}")
    # Prometheus' view: a pod's last sample stands until its next scrape, so around a handover the
    # old leader's last `1` and the new leader's first `1` can coincide for up to a scrape interval.
    step = 0.1
    total = prom.query_range(f"sum(max by (pod) (elector_is_leader{{{sel}}}))", t_prom, t_end, "100ms")
    doubled = sum(step for r in total for _, v in r["values"] if float(v) > 1)
    figure("time Prometheus shows 2 pods at elector_is_leader 1 (s, 1s scrapes)", round(doubled, 1))

    if a.png:
        plot(prom, sel, t_prom, t_end, events, own, a.png)

    if problems:
        raise Failure(f"{len(problems)} of {len(queries)} dashboard queries gave no or implausible data (above)")

    for e in electors:
        if e.alive:
            exit = e.stop("term")
            if exit.get("code") != 0:
                raise Failure(f"{e.ident} exit after SIGTERM: expected code 0, got {exit}")
    if holder(url, election) not in ("", None):
        raise Failure(f"after stopping all electors the Lease holder is {holder(url, election)!r}, expected released")
    log("all electors stopped with exit 0; Lease released")


def lint_real_scrapes(electors, leader) -> None:
    """`promtool check metrics` (through scripts/check-metrics-lint.sh) on what the leader and a
    follower really serve on /metrics, not on a made-up exposition."""
    follower = next(e for e in electors if e is not leader)
    for e, role in ((leader, "leader"), (follower, "follower")):
        code, body = http_get(f"http://127.0.0.1:{e.port}/metrics")
        if code != 200 or not body:
            raise Failure(f"/metrics of the {role} {e.ident}: HTTP {code}")
        lint = subprocess.run([str(ROOT / "scripts/check-metrics-lint.sh")], input=body.encode(), capture_output=True)
        if lint.returncode != 0:
            raise Failure(f"promtool check metrics on the {role}'s /metrics exited {lint.returncode}: "
                          f"{(lint.stdout + lint.stderr).decode(errors='replace').strip()}")
    log("promtool check metrics: clean on the leader's and a follower's real /metrics")


class ClusterFixture:
    """Series shaped like kube-state-metrics' and cAdvisor's, for the panels built on them (neither
    runs here): served on a local port for Prometheus to scrape, with values the scenario sets:
    the Lease holder, a restart counted for each elector this run restarts (the SIGKILLed one's
    last termination marked OOMKilled), CFS periods with elector-0 throttled in a tenth of them.
    It also serves the same series for a pod that runs no elector, which the panels' join to the
    elector pods must leave out. Metric names and labels follow the two projects' documentation
    (kube_lease_owner, kube_pod_container_status_restarts_total,
    kube_pod_container_status_last_terminated_reason, container_cpu_cfs_*_periods_total)."""

    def __init__(self, ns: str, election: str, pods):
        import http.server
        self.ns, self.election, self.pods = ns, election, list(pods) + ["unrelated-0"]
        self.holder = ""
        self.restarts = {pod: 0 for pod in self.pods}
        self.oom = {pod: 0 for pod in self.pods}
        self.t0 = time.monotonic()
        fixture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = fixture.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def exposition(self) -> str:
        ns, el = self.ns, self.election
        periods = int((time.monotonic() - self.t0) * 10)  # a 100 ms CFS period
        lines = [f'kube_lease_owner{{namespace="{ns}",lease="{el}",owner_kind="",owner_name="",'
                 f'lease_holder="{self.holder}"}} 1',
                 f'kube_lease_owner{{namespace="{ns}",lease="another-lease",owner_kind="",owner_name="",'
                 f'lease_holder="someone-else"}} 1']
        for pod in self.pods:
            c = f'namespace="{ns}",pod="{pod}",container="elector"'
            lines.append(f"kube_pod_container_status_restarts_total{{{c}}} {self.restarts[pod]}")
            lines.append(f'kube_pod_container_status_last_terminated_reason{{{c},reason="OOMKilled"}} {self.oom[pod]}')
            lines.append(f"container_cpu_cfs_periods_total{{{c}}} {periods}")
            throttled = periods // 10 if pod in ("elector-0", "unrelated-0") else 0
            lines.append(f"container_cpu_cfs_throttled_periods_total{{{c}}} {throttled}")
        return "\n".join(lines) + "\n"

    def close(self):
        self.server.shutdown()


def expect_external(q, res, prom, sel, idents, fixture, t_start, t_end):
    """A panel on kube-state-metrics or cAdvisor series, against the fixture's series: the values
    the scenario set, for the elector pods only (the unrelated pod left out by the join)."""
    pods = sorted({r["metric"].get("pod") for r in res if "pod" in r["metric"]})
    if "unrelated-0" in pods:
        return f"the join to the elector pods let a pod without an elector through: {pods}"
    if q["panel"].startswith("Lock holder"):
        got = [(r["metric"].get("lease"), r["metric"].get("lease_holder")) for r in res]
        return None if got == [(fixture.election, fixture.holder)] else \
            f"expected the Lease {fixture.election} held by {fixture.holder!r}, got {got}"
    if q["panel"].startswith("Container restarts") and q["ref"] == "A":
        rng = prom.query_range(q["expr"], t_start, t_end, "1s")
        per_pod = {r["metric"].get("pod"): sum(float(v) for _, v in r["values"]) for r in rng}
        want = {pod: float(n) for pod, n in fixture.restarts.items() if pod in idents}
        return None if per_pod == want else \
            f"expected restarts per pod summed over the run's 1s steps {want} (each once), got {per_pod}"
    if q["panel"].startswith("Container restarts") and q["ref"] == "B":
        got = {r["metric"].get("pod"): float(r["value"][1]) for r in res}
        want = {pod: float(n) for pod, n in fixture.oom.items() if pod in idents}
        return None if got == want else f"expected OOMKilled as last termination {want}, got {got}"
    if q["panel"].startswith("CPU throttling"):
        got = {r["metric"].get("pod"): float(r["value"][1]) for r in res}
        if sorted(got) != idents:
            return f"expected one series per elector pod {idents}, got {sorted(got)}"
        ok = 0.05 < got["elector-0"] < 0.2 and all(v == 0 for p, v in got.items() if p != "elector-0")
        return None if ok else f"expected elector-0 throttled in ~10% of periods and the others 0, got {got}"
    return "no expectation written for this external panel"


def threshold_colour(panel, value):
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    colour = steps[0]["color"]
    for st in steps[1:]:
        if value >= st["value"]:
            colour = st["color"]
    return colour


def check_nothing_scraped(prom, queries, panels):
    """The stat panels for an election nothing is scraped for: red, not Grafana's grey "No data".
    Either the query returns values that the panel's thresholds colour red (`or on () vector(0)`),
    or nothing, and the panel sets a noValue text shown in its base colour, red."""
    problems, checked = [], []
    for q in queries:
        panel = panels.get(q["panel_id"])
        if q["kind"] != "panel" or panel["type"] != "stat" or \
                q["panel"] in ("client-go slow path", "Lock holder per the API (kube-state-metrics only)"):
            continue
        res = prom.query(q["expr"])
        if res:
            colours = {threshold_colour(panel, v) for v in values(res)}
            if colours != {"red"}:
                problems.append(f"{q['panel']}: with nothing scraped it shows {values(res)} in {colours}, not red")
        else:
            d = panel["fieldConfig"]["defaults"]
            if not d.get("noValue") or d["thresholds"]["steps"][0]["color"] != "red":
                problems.append(f"{q['panel']}: with nothing scraped it is empty and would show a grey "
                                "\"No data\": set noValue and a red base threshold, or return 0")
        checked.append(q["panel"])
    if not problems:
        log(f"ok nothing scraped: {len(checked)} stat panels show red ({', '.join(checked)})")
    return problems


def expect_panel(q, res, vals, leader, idents, prom, sel, t_start, t_end, lease_transitions):
    """Per-panel expectations for the live run; returns an error message or None."""
    title = q["panel"]
    if q["kind"] == "variable":
        want = {"namespace": "default", "election": "ship-live"}[q["ref"]]
        got = [r["metric"].get(q["ref"]) for r in res]
        return None if want in got else f"variable values {got} lack {want!r}"
    by_pod = {r["metric"].get("pod"): float(r["value"][1]) for r in res}
    if title == "Current leader":
        pods = [r["metric"].get("pod") for r in res]
        return None if pods == [leader] else f"expected exactly [{leader!r}], got {pods}"
    if title == "Leaders":
        return None if vals == [1.0] else f"expected one election with 1 leader, got {vals}"
    if title == "Followers":
        return None if vals == [2.0] else f"expected 2 followers, got {vals}"
    if title == "Fencing token":
        # Created with 0 transitions, then the SIGTERM handover (1) and the SIGKILL takeover (2);
        # the restarted electors rejoin as followers. The leader's token is the Lease's count.
        if vals != [2.0]:
            return f"expected the token 2 after the first leader and two handovers, got {vals}"
        return None if lease_transitions == 2 else \
            f"the token {vals} must be the Lease's leaseTransitions, which is {lease_transitions}"
    if title == "Versions":
        return None if sum(vals) == 3 else f"expected 3 running electors, got {vals}"
    if title == "Leadership timeline":
        if sorted(by_pod) != idents:
            return f"expected a row per pod {idents}, got {sorted(by_pod)}"
        rng = prom.query_range(q["expr"], t_start, t_end)
        led = sorted({r["metric"].get("pod") for r in rng if any(float(v) == 1 for _, v in r["values"])})
        return None if len(led) >= 2 else f"expected >= 2 pods to have led over the run, got {led}"
    if title in ("Leadership transitions", "Observed leader changes"):
        # Summed over every 1s step of the run, each event counts once: at least the SIGTERM
        # handover's acquisition, at most the run's three (first leader, handover, takeover);
        # observed changes: at most 4 per pod. A window wider than a step would count each event
        # in several steps.
        rng = prom.query_range(q["expr"], t_start, t_end, "1s")
        if title == "Leadership transitions":
            total = sum(float(v) for r in rng if r["metric"].get("direction") == "acquired" for _, v in r["values"])
            lo, hi = 1, 3
        else:
            total = sum(float(v) for r in rng for _, v in r["values"])
            lo, hi = 1, 4 * len(idents)
        return None if lo <= total <= hi else \
            f"expected {lo}..{hi} events summed over the run's 1s steps (each counted once), got {total}"
    if title == "Fencing token history":
        if vals != [2.0]:
            return f"expected the token 2 at the end, got {vals}"
        rng = prom.query_range(q["expr"], t_start, t_end, "1s")
        seen = [float(v) for r in rng for _, v in r["values"]]
        if any(b < a for a, b in zip(seen, seen[1:])) or not {1.0, 2.0} <= set(seen):
            return f"expected a history rising through 1 to 2 without a step down, got {sorted(set(seen))}"
        return None
    if title == "Renew latency":
        # Renewals happened (a quantile of no data is NaN, caught above), against a local
        # simulator with no faults: well under the 1 s the KubeElectorRenewLatencyHigh alert uses.
        return None if all(0 < v < 1 for v in vals) else f"expected quantiles in (0, 1s), got {vals}"
    if title == "Renew latency distribution":
        return None if sum(vals) > 0 else f"expected renewals in some bucket, got {vals}"
    if title == "Renewals by result":
        ok = sum(float(r["value"][1]) for r in res if r["metric"].get("result") == "success")
        if not ok > 0:
            return f"expected successful renewals > 0/s, got {res}"
        # one leader renewing every --retry-period (500ms) is ~2/s; allow 5x for jitter and handovers
        return None if sum(vals) <= RENEW_RATE_MAX else \
            f"expected about 2 renewals/s (retry period 500ms, bound {RENEW_RATE_MAX}/s), got {sum(vals):.1f}/s: a renew loop"
    if title == "API requests":
        if not sum(vals) > 0:
            return f"expected requests > 0/s, got {vals}"
        return None if sum(vals) <= API_RATE_MAX else \
            f"expected a few API requests/s for 3 electors (bound {API_RATE_MAX}/s), got {sum(vals):.1f}/s: {res}"
    if title == "Renew failures":
        # No API fault in this run: a renewal never fails (a SIGKILL is not a failed renewal).
        return None if all(v == 0 for v in vals) else f"expected no renew failures, got {vals}"
    if title == "Time since last renew":
        return None if all(-1 <= v < 5 for v in vals) else f"expected < 5s with a 500ms retry period, got {vals}"
    if title == "API error ratio":
        # 404 (no Lease yet) and 409 (lost races) are not errors; nothing else fails in this run.
        return None if all(v == 0 for v in vals) else f"expected no API errors in a run without faults, got {res}"
    if title == "API latency p99":
        # Requests answered by a local simulator: every verb but the long-lived watch is fast.
        quick = {r["metric"].get("verb"): float(r["value"][1]) for r in res if r["metric"].get("verb") != "watch"}
        if not quick or "update" not in quick:
            return f"expected latencies for the renewals' verb (update) at least, got {res}"
        return None if all(0 < v < 1 for v in quick.values()) else f"expected p99 in (0, 1s) per verb, got {quick}"
    if title in ("Memory (RSS)", "Open file descriptors", "Uptime", "CPU"):
        if sorted(by_pod) != idents:
            return f"expected one series per pod {idents}, got {sorted(by_pod)}"
        if title == "Memory (RSS)" and not all(2**20 < v < 64 * 2**20 for v in vals):
            return f"expected RSS between 1 MiB and the 64 MiB limit, got {vals}"
        if title in ("Open file descriptors", "Uptime") and not all(v > 0 for v in vals):
            return f"expected > 0, got {vals}"
        if title == "CPU" and not all(0 <= v < 1 for v in vals):
            return f"expected 0..1 cores, got {vals}"
        return None
    if title == "client-go compatible status":
        return None if vals == [1.0] else f"expected leader_election_master_status summing to 1, got {vals}"
    if title == "client-go slow path":
        # The slow path is a renewal that had to re-read the lock after a conflict; only the
        # leader writes the Lease in steady state, so none occurs.
        return None if all(v == 0 for v in vals) else f"expected no slow-path renewals, got {vals}"
    if title == "Application health and candidacy":
        # Every stand-in application is healthy: each pod's elector_app_healthy is 1 (A), and all
        # three electors stand (B).
        if q["ref"] == "A":
            if sorted(by_pod) != idents:
                return f"expected one series per pod {idents}, got {sorted(by_pod)}"
            return None if all(v == 1 for v in vals) else f"expected every application healthy (1), got {by_pod}"
        return None if vals == [3.0] else f"expected 3 candidates standing, got {vals}"
    if title.startswith("Proxy"):
        return expect_proxy_panel(q, res, vals, by_pod, idents, prom, sel, t_start, t_end)
    return "no expectation written for this panel; add one to live.py expect_panel()"


def expect_proxy_panel(q, res, vals, by_pod, idents, prom, sel, t_start, t_end):
    """The proxy row, after a run with requests through every proxy, a graceful handover, and a
    crash failover with a burst past the queue limit at one follower (ProxyLoad, cmd_prometheus)."""
    title = q["panel"]
    if title == "Proxy requests":
        if q["ref"] == "B":
            # the requests that waited for a leader: at least the burst's first one
            return None if vals and vals[0] > 0 else f"expected queued requests > 0/s, got {vals}"
        outcomes = {r["metric"].get("outcome"): float(r["value"][1]) for r in res}
        if not all(outcomes.get(o, 0) > 0 for o in ("local", "forwarded", "rejected")):
            return f"expected local, forwarded and rejected requests > 0/s, got {outcomes}"
        # each forwarded request is served locally by the leader's proxy (one hop), so local
        # covers forwarded
        return None if outcomes["local"] >= outcomes["forwarded"] else             f"expected local >= forwarded (a forwarded request is served by the leader), got {outcomes}"
    if title == "Proxy requests by pod":
        pods = {r["metric"].get("pod") for r in res}
        if sorted(pods) != idents:
            return f"expected series for every pod {idents}, got {sorted(pods)}"
        led = {r["metric"].get("pod") for r in prom.query(
            f"max_over_time(elector_is_leader{{{sel}}}[{int(t_end - t_start) + 30}s]) == 1")}
        local = {r["metric"].get("pod") for r in res if r["metric"].get("outcome") == "local" and float(r["value"][1]) > 0}
        if not local or not local <= led:
            return f"expected local requests only at pods that led ({sorted(led)}), got them at {sorted(local)}"
        fwd = {r["metric"].get("pod") for r in res if r["metric"].get("outcome") == "forwarded" and float(r["value"][1]) > 0}
        return None if len(fwd) >= 2 else f"expected at least two pods to have forwarded as followers, got {sorted(fwd)}"
    if title == "Proxy added latency":
        # loopback, a stand-in answering at once: the median is small; the p99 may include a
        # request that waited out a handover (at most the 3s lease) in the queue
        if q["ref"] == "A":
            return None if all(0 < v < 0.5 for v in vals) else f"expected a p50 in (0, 0.5s), got {vals}"
        return None if all(0 < v < 6 for v in vals) else f"expected a p99 in (0, 6s), got {vals}"
    if title == "Proxy rejected share":
        # a few rejections among thousands of requests: above 0, under the alert's 5%
        return None if all(0 < v < 0.05 for v in vals) else f"expected a share in (0, 5%), got {vals}"
    if title == "Proxy queue depth":
        if sorted(by_pod) != idents:
            return f"expected one series per pod {idents}, got {sorted(by_pod)}"
        return None if all(v == 0 for v in vals) else f"expected empty queues in steady state, got {by_pod}"
    return "no expectation written for this proxy panel; add one to live.py expect_proxy_panel()"


def own_intervals(workdir: pathlib.Path, idents, killed: dict, t_start: float, t_end: float) -> dict:
    """Each elector's leadership as it logged it: `became leader` to `stopped leading` (or, for a
    SIGKILLed one, the moment the kill was confirmed), on CLOCK_MONOTONIC, mapped to wall-clock
    seconds (one offset for the whole machine: the electors and this script read the same clock)."""
    offset = time.time() - time.monotonic()
    out = {}
    for ident in idents:
        spans, start = [], None
        for line in (workdir / f"{ident}.log").read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            msg = rec.get("message") or rec.get("fields", {}).get("message")
            if msg not in ("became leader", "stopped leading") or "monotonic_ns" not in rec:
                continue
            t = int(rec["monotonic_ns"]) / 1e9 + offset
            if t < t_start:  # an earlier run's log in the same workdir
                continue
            if msg == "became leader":
                if start is not None:  # the process died leading (SIGKILL) and was started again
                    k = killed.get(ident)
                    spans.append((start, k if k is not None and start < k <= t else t, "SIGKILL"))
                start = t
            elif start is not None:
                spans.append((start, t, "stopped leading"))
                start = None
        if start is not None:
            k = killed.get(ident)
            spans.append((start, k, "SIGKILL") if k is not None and k > start else (start, t_end, "still leading"))
        out[ident] = spans
    return out


def max_overlap(own: dict) -> float:
    """The longest time two electors' own leadership intervals share (0: never two at once)."""
    spans = [(s, e, ident) for ident, ss in own.items() for s, e, _ in ss]
    worst = 0.0
    for i, (s1, e1, a) in enumerate(spans):
        for s2, e2, b in spans[i + 1:]:
            if a != b:
                worst = max(worst, min(e1, e2) - max(s1, s2))
    return worst


def plot(prom: Prom, sel: str, t0: float, t1: float, events, own: dict, out: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no PNG")
        return
    lead = sorted(prom.query_range(f"max by (pod) (elector_is_leader{{{sel}}})", t0, t1, "500ms"),
                  key=lambda r: r["metric"].get("pod", ""))
    tok = prom.query_range(f"max(elector_fencing_token{{{sel}}})", t0, t1, "500ms")
    fig, (ax0, ax1, ax2) = plt.subplots(3, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1]})
    names = [r["metric"].get("pod", "") for r in lead] or sorted(own)
    for i, ident in enumerate(names):
        for s, e, how in own.get(ident, []):
            ax0.broken_barh([(s - t0, e - s)], (i, 0.8), color="tab:blue", alpha=0.8)
            if how == "SIGKILL":
                ax0.annotate("killed", (e - t0, i + 0.4), xytext=(3, 0), textcoords="offset points", fontsize=7, va="center")
        ax0.plot([0, t1 - t0], [i, i], color="lightgray", lw=0.5)
    ax0.set_yticks([i + 0.4 for i in range(len(names))])
    ax0.set_yticklabels(names)
    ax0.set_ylim(-0.2, len(names) + 0.45)
    ax0.set_title("each elector's own leadership ('became leader' → 'stopped leading' or SIGKILL, CLOCK_MONOTONIC)", fontsize=10)
    # a missing sample means the process was down (stale series): draw it as "not leader"
    grid = sorted({float(t) for r in lead + tok for t, _ in r["values"]})
    for i, r in enumerate(lead):
        have = {float(t): float(v) for t, v in r["values"]}
        xs = [t - t0 for t in grid]
        ys = [have.get(t, 0.0) for t in grid]
        ax1.fill_between(xs, i, [i + 0.8 * y for y in ys], step="post", alpha=0.8, color="tab:green")
        ax1.plot(xs, [i] * len(xs), color="lightgray", lw=0.5)
    ax1.set_yticks([i + 0.4 for i in range(len(lead))])
    ax1.set_yticklabels([r["metric"].get("pod", "") for r in lead])
    ax1.set_ylim(-0.2, len(lead) + 0.45)
    # where Prometheus has two pods at 1: the old leader's last sample standing until its next scrape
    both = [sum(1 for r in lead if {float(t): float(v) for t, v in r["values"]}.get(t, 0.0) >= 1) > 1 for t in grid]
    ax1.fill_between([t - t0 for t in grid], -0.2, len(lead) + 0.45, where=both, step="post",
                     color="tab:orange", alpha=0.25, lw=0)
    ax1.set_title("Prometheus' view, scraped every 1s: elector_is_leader == 1 per pod; orange: 2 pods at 1,\n"
                  "each pod's last sample standing until its next scrape (not two leaders: see above)", fontsize=10)
    for r in tok:
        ax2.step([float(t) - t0 for t, _ in r["values"]], [float(v) for _, v in r["values"]], where="post")
    ax2.set_title("elector_fencing_token, max over pods (-1: nobody leads)")
    for ax in (ax0, ax1, ax2):
        for t, label in events:
            ax.axvline(t - t0, color="tab:red", ls="--", lw=1)
    for k, (t, label) in enumerate(events):
        ax0.annotate(label, (t - t0, len(names) + 0.35 - 0.3 * k), xytext=(3, 0), textcoords="offset points",
                     color="tab:red", fontsize=8, va="top")
    ax2.set_xlabel("seconds (Prometheus scraping 3 electors every 1s; lease 3s, retry 500ms)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    log(f"wrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("container")
    c.add_argument("--image", required=True)
    c.add_argument("--sim", required=True)
    c.add_argument("--workdir", required=True)
    c.add_argument("--fleet", default=default_fleet(), help="the harness's fleet binary (default: %(default)s)")
    p = sub.add_parser("prometheus")
    p.add_argument("--elector", required=True)
    p.add_argument("--sim", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--fleet", default=default_fleet(), help="the harness's fleet binary (default: %(default)s)")
    p.add_argument("--dashboard", default=str(ROOT / "grafana/kube-elector.json"))
    p.add_argument("--png")
    a = ap.parse_args()
    try:
        (cmd_container if a.cmd == "container" else cmd_prometheus)(a)
    except Failure as e:
        print(f"FAIL {a.cmd}: {e}", file=sys.stderr)
        print(f"  logs in {a.workdir}", file=sys.stderr)
        return 1
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
