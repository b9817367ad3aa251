#!/usr/bin/env python3
"""Copies of the example in one namespace, built with k8s/components/election (and, for the
EndpointSlice variant, k8s/components/election-endpointslice), must not share an election, a
slice or each other's pods.

    check_copies.py COPY.yaml COPY.yaml [COPY.yaml...]

For each render: the election named by the elector's --election, the Lease the Role grants
(resourceNames) and the pod label kube-elector/election are one name; the selectors of the
Deployment, the Services and the PDB select its own pods only; with --endpoint-slice, the slice's
Service is a Service of the render without a selector and the slice RBAC names the slice. Across
the copies: distinct Lease names, slices, object names and pod selectors. Then a mutation check:
the first two renders without the component's effect (both electing the base's "example-app")
must fail.
"""
import copy
import sys

import yaml


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def arg(args, flag):
    return next((a.split("=", 1)[1] for a in args if a.startswith(flag + "=")), None)


def facts(docs, where):
    """(election, selector label value, object names, problems) of one render."""
    problems = []
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]
    elector = next(c for c in pod["spec"]["containers"] if c["name"] == "elector")
    election = arg(elector.get("args", []), "--election")
    label = pod["metadata"]["labels"].get("kube-elector/election")
    leases = [n for d in docs if d["kind"] == "Role" for r in d["rules"]
              if "leases" in r.get("resources", []) for n in r.get("resourceNames", [])]
    if not (election and label == election and leases == [election]):
        problems.append(f"{where}: --election {election!r}, pod label {label!r} and the Role's Lease "
                        f"resourceNames {leases} must be one name")
    app = pod["metadata"]["labels"].get("app.kubernetes.io/name")
    selectors = [("Deployment", dep["spec"]["selector"]["matchLabels"])]
    selectors += [(f"Service/{d['metadata']['name']}", d["spec"]["selector"])
                  for d in docs if d["kind"] == "Service" and d["spec"].get("selector")]
    selectors += [(f"PDB/{d['metadata']['name']}", d["spec"]["selector"]["matchLabels"])
                  for d in docs if d["kind"] == "PodDisruptionBudget"]
    for what, sel in selectors:
        if sel.get("app.kubernetes.io/name") != app:
            problems.append(f"{where}: {what} selects app.kubernetes.io/name={sel.get('app.kubernetes.io/name')!r}, "
                            f"not its own pods ({app!r})")
    slice_name = arg(elector.get("args", []), "--endpoint-slice")
    if slice_name is not None:
        service = arg(elector.get("args", []), "--endpoint-slice-service")
        selectorless = [d["metadata"]["name"] for d in docs if d["kind"] == "Service" and not d["spec"].get("selector")]
        if service not in selectorless:
            problems.append(f"{where}: --endpoint-slice-service {service!r} is not a Service without a selector "
                            f"in this copy ({selectorless})")
        granted = [n for d in docs if d["kind"] == "Role" for r in d["rules"]
                   if "endpointslices" in r.get("resources", []) for n in r.get("resourceNames", [])]
        if granted != [slice_name]:
            problems.append(f"{where}: the slice RBAC names {granted}, the elector writes {slice_name!r}")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    return election, app, names, problems, slice_name


def check(renders):
    all_facts = [facts(docs, f"copy {i + 1}") for i, docs in enumerate(renders)]
    problems = [p for f in all_facts for p in f[3]]
    for i, (ea, aa, na, _, sa) in enumerate(all_facts):
        for j, (eb, ab, nb, _, sb) in enumerate(all_facts[i + 1:], start=i + 1):
            pair = f"copies {i + 1} and {j + 1}"
            if ea == eb:
                problems.append(f"{pair} elect through Lease {ea!r}: one leader for both")
            if aa == ab:
                problems.append(f"{pair} select app.kubernetes.io/name={aa!r}: each Service and PDB spans both")
            if na & nb:
                problems.append(f"objects in {pair}: {sorted(na & nb)}")
            if sa is not None and sa == sb:
                problems.append(f"{pair} write one EndpointSlice {sa!r}")
    return problems, [f[0] for f in all_facts]


def main():
    renders = [load(path) for path in sys.argv[1:]]
    problems, elections = check(renders)
    if problems:
        sys.exit("copies:\n  " + "\n  ".join(problems))
    # Mutation: undo the component (both back to the base's election and app name).
    undone = []
    for docs in (copy.deepcopy(renders[0]), copy.deepcopy(renders[1])):
        for d in docs:
            if d["kind"] == "Deployment":
                pod = d["spec"]["template"]
                for c in pod["spec"]["containers"]:
                    if c["name"] == "elector":
                        c["args"] = ["--election=example-app" if a.startswith("--election=") else a for a in c["args"]]
                pod["metadata"]["labels"]["kube-elector/election"] = "example-app"
            if d["kind"] == "Role":
                for r in d["rules"]:
                    if "leases" in r.get("resources", []) and r.get("resourceNames"):
                        r["resourceNames"] = ["example-app"]
        undone.append(docs)
    if not check(undone)[0]:
        sys.exit("copies: the check misses two copies sharing the Lease example-app")
    print(f"  {len(renders)} copies in one namespace: Leases {', '.join(elections)}; own selectors, slices "
          f"and objects; the check catches a shared Lease")


if __name__ == "__main__":
    main()
