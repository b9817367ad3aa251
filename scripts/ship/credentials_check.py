#!/usr/bin/env python3
"""Proves from the rendered manifests that only the elector container holds API credentials.

For every rendered kustomization given (each Deployment in it):
- the pod does not automount the service-account token (automountServiceAccountToken: false on
  the pod, and on its ServiceAccount when the render has it);
- no container other than `elector` (init and regular containers alike) mounts a volume that
  carries a service-account token (a projected serviceAccountToken source, or any secret, which
  is how legacy token Secrets arrive), or anything under /var/run/secrets/kubernetes.io;
- the elector mounts a projected volume with a serviceAccountToken (with an expiry), the cluster
  CA and the namespace at /var/run/secrets/kubernetes.io/serviceaccount, so in-cluster
  configuration works.

Then it checks itself: each of three mutations of the first render (token automounted, the app
container mounting the token volume, the elector without it) must be reported.

    credentials_check.py RENDERED.yaml...
"""

import copy
import sys

import yaml

SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def credential_volumes(pod):
    names = set()
    for v in pod.get("volumes", []):
        sources = v.get("projected", {}).get("sources", [])
        if "secret" in v or any("serviceAccountToken" in s or "secret" in s for s in sources):
            names.add(v["name"])
    return names


def check(docs, where):
    problems = []
    accounts = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ServiceAccount"}
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if not deployments:
        problems.append(f"{where}: no Deployment rendered")
    for dep in deployments:
        w = f"{where} Deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]["spec"]
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{w}: pod automountServiceAccountToken must be false, got "
                            f"{pod.get('automountServiceAccountToken')!r}")
        sa = accounts.get(pod.get("serviceAccountName", "default"))
        if sa is not None and sa.get("automountServiceAccountToken") is not False:
            problems.append(f"{w}: ServiceAccount/{sa['metadata']['name']} automountServiceAccountToken must be false")
        creds = credential_volumes(pod)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        containers = pod.get("initContainers", []) + pod.get("containers", [])
        for c in containers:
            mounts = c.get("volumeMounts", [])
            if c["name"] == "elector":
                token = [m for m in mounts if m.get("mountPath") == SA_PATH]
                if len(token) != 1:
                    problems.append(f"{w}: the elector must mount its token at {SA_PATH}")
                    continue
                sources = volumes.get(token[0]["name"], {}).get("projected", {}).get("sources", [])
                sat = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s]
                if len(sat) != 1 or sat[0].get("path") != "token" or not sat[0].get("expirationSeconds"):
                    problems.append(f"{w}: the elector's {SA_PATH} must project a serviceAccountToken at "
                                    f"path token with expirationSeconds, got {sources!r}")
                if not any(s.get("configMap", {}).get("name") == "kube-root-ca.crt" for s in sources):
                    problems.append(f"{w}: the elector's {SA_PATH} must project kube-root-ca.crt (ca.crt)")
                if not any(i.get("path") == "namespace" for s in sources
                           for i in s.get("downwardAPI", {}).get("items", [])):
                    problems.append(f"{w}: the elector's {SA_PATH} must project the namespace")
                if token[0].get("readOnly") is not True:
                    problems.append(f"{w}: the elector's token mount must be readOnly")
                continue
            for m in mounts:
                if m["name"] in creds or m.get("mountPath", "").startswith("/var/run/secrets/kubernetes.io"):
                    problems.append(f"{w}: container {c['name']} mounts credentials "
                                    f"(volume {m['name']} at {m.get('mountPath')})")
            if c.get("envFrom") and any("secretRef" in e for e in c["envFrom"]):
                problems.append(f"{w}: container {c['name']} takes environment from a Secret")
    return problems


def mutations(docs):
    def deployment(d):
        return next(x for x in d if x.get("kind") == "Deployment")["spec"]["template"]["spec"]

    def automount(d):
        deployment(d)["automountServiceAccountToken"] = True

    def app_mounts_token(d):
        pod = deployment(d)
        volume = next(iter(credential_volumes(pod)))
        app = next(c for c in pod["containers"] if c["name"] != "elector")
        app.setdefault("volumeMounts", []).append({"name": volume, "mountPath": "/tokens"})

    def elector_without_token(d):
        el = next(c for c in deployment(d)["containers"] if c["name"] == "elector")
        el["volumeMounts"] = [m for m in el.get("volumeMounts", []) if m.get("mountPath") != SA_PATH]

    for name, mutate in (("token automounted", automount), ("app container mounts the token", app_mounts_token),
                         ("elector without its token", elector_without_token)):
        mutant = copy.deepcopy(docs)
        mutate(mutant)
        yield name, mutant


def main():
    renders = [(path, [d for d in yaml.safe_load_all(open(path)) if d]) for path in sys.argv[1:]]
    problems = [p for path, docs in renders for p in check(docs, path)]
    if problems:
        sys.exit("credentials:\n  " + "\n  ".join(problems))
    for name, mutant in mutations(renders[0][1]):
        if not check(mutant, "mutant"):
            sys.exit(f"credentials: the check misses a mutation: {name}")
    for path, docs in renders:
        for dep in (d for d in docs if d.get("kind") == "Deployment"):
            pod = dep["spec"]["template"]["spec"]
            others = [c["name"] for c in pod.get("initContainers", []) + pod["containers"] if c["name"] != "elector"]
            print(f"  {path}: automountServiceAccountToken false; token projected into elector only; "
                  f"no credentials in {', '.join(others)}")
    print("  the check catches each of 3 mutations (automount, app mounts the token, elector without it)")


if __name__ == "__main__":
    main()
