#!/usr/bin/env python3
"""Evaluates the pod-label variant's ValidatingAdmissionPolicy, as rendered by kustomize, against
admission requests built as the API server builds them, with a real CEL implementation (PyPI
common-expression-language, the `cel` crate's bindings).

The API server runs a policy like this: if every matchCondition is true, the variables are bound
in order, and the request is denied when any validation is false or fails to evaluate
(failurePolicy: Fail). The requests carry what the server puts there for a service account with
a bound (projected) token: request.userInfo.username `system:serviceaccount:NS:SA` and the extra
`authentication.kubernetes.io/pod-name` (and pod-uid); a `kubectl patch` or the elector's merge
patch arrives as operation UPDATE with object (after the patch) and oldObject (before).

    admission_policy_test.py RENDERED_POD_LABEL_YAML

Exit 1 with the failing case named if any case is decided otherwise than expected, or if a
mutated policy (each validation dropped in turn) still denies everything it should: every
validation must be needed by some case.
"""

import copy
import sys

import cel
import yaml

NS = "default"
SA = "example-app"
KEY = "kube-elector/role"
POLICY = "example-app-elector-pod-label"


def pod(name, role=None, extra_labels=None, image="ghcr.io/kube-elector/kube-elector:0.1.0"):
    labels = {"app.kubernetes.io/name": "example-app", "kube-elector/election": "example-app"}
    if role is not None:
        labels[KEY] = role
    labels.update(extra_labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": labels,
            "annotations": {"kubectl.kubernetes.io/default-container": "app"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "example-app-7d9c",
                                 "uid": "rs-uid", "controller": True}],
        },
        "spec": {
            "serviceAccountName": SA,
            "containers": [
                {"name": "app", "image": "docker.io/library/busybox:1.37"},
                {"name": "elector", "image": image},
            ],
        },
    }


def user(sa=SA, ns=NS, pod_name="example-app-a", bound=True):
    info = {
        "username": f"system:serviceaccount:{ns}:{sa}",
        "uid": f"uid-sa-{sa}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
    }
    if bound:
        info["extra"] = {
            "authentication.kubernetes.io/pod-name": [pod_name],
            "authentication.kubernetes.io/pod-uid": [f"uid-{pod_name}"],
            "authentication.kubernetes.io/credential-id": ["JTI=0c9b4d3e"],
        }
    return info


def request(operation, name, user_info, old=None, new=None, sub_resource="", ns=NS):
    return {
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": sub_resource,
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": ns,
            "operation": operation,
            "userInfo": user_info,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "PatchOptions"} if operation == "UPDATE" else None,
        },
        "object": new,
        "oldObject": old,
    }


def patched(old, mutate):
    new = copy.deepcopy(old)
    mutate(new)
    return new


def set_label(key, value):
    def mutate(p):
        p["metadata"]["labels"][key] = value
    return mutate


def cases():
    me = "example-app-a"
    old = pod(me, role="follower")
    unlabelled = pod(me)
    other = pod("example-app-b", role="follower")

    def both(*mutations):
        def mutate(p):
            for m in mutations:
                m(p)
        return mutate

    def drop_label(key):
        def mutate(p):
            del p["metadata"]["labels"][key]
        return mutate

    def image(p):
        p["spec"]["containers"][1]["image"] = "evil.example/miner:latest"

    def annotate(p):
        p["metadata"]["annotations"]["x"] = "y"

    def finalize(p):
        p["metadata"]["finalizers"] = ["example.com/hold"]

    def orphan(p):
        p["metadata"]["ownerReferences"] = []

    u = user()
    # (name, expected: "allow" | "deny" | "not-matched", review)
    yield "own pod: follower -> leader", "allow", request("UPDATE", me, u, old, patched(old, set_label(KEY, "leader")))
    yield "own pod: leader -> follower", "allow", request(
        "UPDATE", me, u, pod(me, role="leader"), pod(me, role="follower"))
    yield "own pod: first label (none -> follower)", "allow", request(
        "UPDATE", me, u, unlabelled, patched(unlabelled, set_label(KEY, "follower")))
    yield "own pod: no change (a repeated patch)", "allow", request("UPDATE", me, u, old, copy.deepcopy(old))
    yield "another pod's label", "deny", request(
        "UPDATE", "example-app-b", u, other, patched(other, set_label(KEY, "leader")))
    yield "own pod: another label changed", "deny", request(
        "UPDATE", me, u, old, patched(old, set_label("app.kubernetes.io/name", "other")))
    yield "own pod: our label and another one", "deny", request(
        "UPDATE", me, u, old, patched(old, both(set_label(KEY, "leader"), set_label("team", "x"))))
    yield "own pod: another label added", "deny", request("UPDATE", me, u, old, patched(old, set_label("team", "x")))
    yield "own pod: another label removed", "deny", request(
        "UPDATE", me, u, old, patched(old, drop_label("app.kubernetes.io/name")))
    yield "own pod: our label to another value", "deny", request(
        "UPDATE", me, u, old, patched(old, set_label(KEY, "admin")))
    yield "own pod: image changed", "deny", request("UPDATE", me, u, old, patched(old, image))
    yield "own pod: label and image", "deny", request(
        "UPDATE", me, u, old, patched(old, both(set_label(KEY, "leader"), image)))
    yield "own pod: annotation added", "deny", request("UPDATE", me, u, old, patched(old, annotate))
    yield "own pod: finalizer added", "deny", request("UPDATE", me, u, old, patched(old, finalize))
    yield "own pod: owner references removed", "deny", request("UPDATE", me, u, old, patched(old, orphan))
    yield "own pod: status subresource", "deny", request(
        "UPDATE", me, u, old, patched(old, set_label(KEY, "leader")), sub_resource="status")
    yield "own pod: ephemeral container", "deny", request(
        "UPDATE", me, u, old, patched(old, image), sub_resource="ephemeralcontainers")
    yield "own pod: delete", "deny", request("DELETE", me, u, old, None)
    yield "create a pod", "deny", request("CREATE", "example-app-x", u, None, pod("example-app-x"))
    yield "own pod: exec (CONNECT)", "deny", request(
        "CONNECT", me, u, None, {"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"]}, sub_resource="exec")
    yield "own pod's label with a token that names no pod (legacy secret token)", "deny", request(
        "UPDATE", me, user(bound=False), old, patched(old, set_label(KEY, "leader")))
    yield "another service account: not this policy's business", "not-matched", request(
        "UPDATE", "example-app-b", user(sa="deployer"), other, patched(other, image))
    yield "a same-named account of another namespace (RBAC stops it)", "not-matched", request(
        "UPDATE", me, user(ns="other"), old, patched(old, set_label(KEY, "leader")))
    yield "a person", "not-matched", request(
        "UPDATE", me, {"username": "alice@example.com", "groups": ["system:authenticated"]}, old, patched(old, image))


def evaluate(policy, review):
    """'not-matched', 'allow', or ('deny', message)."""
    spec = policy["spec"]
    activation = {"request": review["request"], "object": review["object"], "oldObject": review["oldObject"]}
    rr = review["request"]
    resource = rr["resource"]["resource"] + ("/" + rr["subResource"] if rr["subResource"] else "")
    covered = any(
        rr["operation"] in rule["operations"] or "*" in rule["operations"]
        for rule in spec["matchConstraints"]["resourceRules"]
        if rr["resource"]["group"] in rule["apiGroups"]
        and any(r == resource or (r.endswith("/*") and "/" in resource and r[:-2] == resource.split("/")[0])
                for r in rule["resources"])
    )
    if not covered:
        return "not-matched"
    for condition in spec.get("matchConditions", []):
        if cel.evaluate(condition["expression"], activation) is not True:
            return "not-matched"
    variables = {}
    for variable in spec.get("variables", []):
        try:
            variables[variable["name"]] = cel.evaluate(variable["expression"], {**activation, "variables": variables})
        except Exception as error:  # noqa: BLE001 - an evaluation error is a denial under Fail
            variables[variable["name"]] = None
            return ("deny", f"variable {variable['name']} failed: {error}")
    for validation in spec["validations"]:
        try:
            ok = cel.evaluate(validation["expression"], {**activation, "variables": variables})
        except Exception as error:  # noqa: BLE001
            return ("deny", f"evaluation error (failurePolicy {spec['failurePolicy']}): {error}")
        if ok is not True:
            return ("deny", validation.get("message", validation["expression"]))
    return "allow"


def run(policy, quiet=False):
    failures = []
    for name, expected, review in cases():
        got = evaluate(policy, review)
        verdict = got if isinstance(got, str) else got[0]
        if verdict != expected:
            failures.append(f"{name}: expected {expected}, got {got}")
        elif not quiet:
            detail = f" ({got[1]})" if isinstance(got, tuple) else ""
            print(f"  {verdict:<11} {name}{detail}")
    return failures


def main():
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
    policies = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == POLICY]
    bindings = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"
                and d["spec"].get("policyName") == POLICY]
    if len(policies) != 1 or len(bindings) != 1:
        sys.exit(f"admission policy: expected one {POLICY} and one binding to it, got {len(policies)} and {len(bindings)}")
    if bindings[0]["spec"].get("validationActions") != ["Deny"]:
        sys.exit(f"admission policy: the binding must Deny, got {bindings[0]['spec'].get('validationActions')}")
    policy = policies[0]
    if policy["spec"].get("failurePolicy") != "Fail":
        sys.exit("admission policy: failurePolicy must be Fail (an evaluation error must deny)")
    failures = run(policy)
    if failures:
        sys.exit("admission policy: wrong decisions:\n  " + "\n  ".join(failures))
    # Every validation is needed: dropping any one must let some denied case through.
    for i, validation in enumerate(policy["spec"]["validations"]):
        mutant = copy.deepcopy(policy)
        del mutant["spec"]["validations"][i]
        if not run(mutant, quiet=True):
            sys.exit(f"admission policy: no case needs validation {i} ({validation.get('message')}); add one")
    print(f"  {sum(1 for _ in cases())} requests decided as expected; each of the "
          f"{len(policy['spec']['validations'])} validations is needed by at least one")


if __name__ == "__main__":
    main()
