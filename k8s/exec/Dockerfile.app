# An application image that runs under kube-elector in exec mode (k8s/exec/).
#
# The elector is one static binary: copy it out of the kube-elector image into the application's
# image and make it the entrypoint; the application's own command follows `--`. The elector runs
# as PID 1: it reaps orphaned processes, and its child dies with it (parent-death signal).
FROM ghcr.io/kube-elector/kube-elector:0.1.0 AS elector

FROM registry.example.com/example-job:1.0.0
COPY --from=elector /kube-elector /usr/local/bin/kube-elector
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kube-elector"]
# Flags (or ELECTOR_* variables) come first, the application last, after `--`.
CMD ["--election=example-app", "--", "/app/example-job"]
