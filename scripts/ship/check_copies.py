#!/usr/bin/env python3
"""Two copies of the example in one namespace, built with k8s/components/election, must not share
an election or each other's pods.

    check_copies.py ALPHA.yaml BETA.yaml

For each render: the election named by the elector's --election, the Lease the Role grants
(resourceNames) and the pod label kube-elector/election are one name; the selectors of the
Deployment, the Services and the PDB select its own pods only. Across the two: distinct Lease
names, distinct object names, distinct pod selectors. Then a mutation check: the same two renders
without the component's effect (both electing the base's "example-app") must fail.
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
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    return election, app, names, problems


def check(a_docs, b_docs):
    ea, aa, na, pa = facts(a_docs, "alpha")
    eb, ab, nb, pb = facts(b_docs, "beta")
    problems = pa + pb
    if ea == eb:
        problems.append(f"both copies elect through Lease {ea!r}: one leader for both")
    if aa == ab:
        problems.append(f"both copies select app.kubernetes.io/name={aa!r}: each Service and PDB spans both")
    if na & nb:
        problems.append(f"objects in both copies: {sorted(na & nb)}")
    return problems, (ea, eb)


def main():
    a_docs, b_docs = load(sys.argv[1]), load(sys.argv[2])
    problems, (ea, eb) = check(a_docs, b_docs)
    if problems:
        sys.exit("copies:\n  " + "\n  ".join(problems))
    # Mutation: undo the component (both back to the base's election and app name).
    undone = []
    for docs in (copy.deepcopy(a_docs), copy.deepcopy(b_docs)):
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
    if not check(*undone)[0]:
        sys.exit("copies: the check misses two copies sharing the Lease example-app")
    print(f"  two copies in one namespace: Leases {ea!r} and {eb!r}, own selectors, no shared objects; "
          f"the check catches a shared Lease")


if __name__ == "__main__":
    main()
