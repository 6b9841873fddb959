"""Lints and renders the helm chart with a real Helm engine (the Helm v4 SDK), then validates
every rendered manifest against Kubernetes' schemas: with the default values and with every
optional part switched on."""

import pathlib
import sys

import helm_python as helm
import kubernetes_validate
import yaml

CHART = pathlib.Path(__file__).resolve().parent.parent / "helm" / "payments-gateway"
KUBERNETES = "1.32.0"


def rendered_documents(values):
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(values)
    manifests = chart.render(values, name="pg", namespace="payments", is_install=True)
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            assert "payments-gateway" in text, "NOTES.txt renders"
            continue
        for document in yaml.safe_load_all(text):
            if document:
                yield path, document


def check_service_monitor(document):
    # A CRD: not in Kubernetes' own schemas, so its shape is checked here.
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    endpoint = document["spec"]["endpoints"][0]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert document["spec"]["selector"]["matchLabels"]


def validate(case, values, expected_kinds):
    kinds = []
    for path, document in rendered_documents(values):
        kind = document["kind"]
        kinds.append(kind)
        if kind == "ServiceMonitor":
            check_service_monitor(document)
        else:
            kubernetes_validate.validate(document, KUBERNETES, strict=True)
        if kind == "Deployment":
            pod = document["spec"]["template"]["spec"]
            container = pod["containers"][0]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert pod["securityContext"]["runAsNonRoot"] is True
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert "grpc" in container[probe], f"{probe} is a native gRPC probe"
            annotations = document["spec"]["template"]["metadata"]["annotations"]
            assert "checksum/config" in annotations and "checksum/secret" in annotations
    missing = set(expected_kinds) - set(kinds)
    assert not missing, f"{case}: missing {missing}"
    print(f"helm {case}: {len(kinds)} manifests valid for Kubernetes {KUBERNETES}: {', '.join(sorted(kinds))}")


def expect_failure(case, values):
    try:
        list(rendered_documents(values))
    except helm.HelmError as error:
        print(f"helm {case}: refused as expected ({type(error).__name__})")
        return
    raise AssertionError(f"{case}: should not render")


def main():
    report = helm.lint(str(CHART), strict=True, kube_version=f"v{KUBERNETES}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
    assert not problems, f"helm lint: {problems}"
    print(f"helm lint: {report.get('total_charts_linted')} chart(s), no warning")

    validate("defaults", {}, ["Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount"])
    everything = yaml.safe_load((CHART / "ci" / "all-features.yaml").read_text())
    validate(
        "all-features",
        everything,
        ["Deployment", "Service", "ConfigMap", "ServiceAccount", "HorizontalPodAutoscaler",
         "PodDisruptionBudget", "ServiceMonitor"],
    )
    hub2 = {"hub2": {"baseUrl": "https://api.hub2.example"},
            "secrets": {"hub2ApiKey": "k", "hub2MerchantId": "m", "hub2WebhookSecret": "new,old"},
            "config": {"routes": "CI:hub2,*:novasend"}}
    validate("hub2", hub2, ["Deployment", "Secret", "ConfigMap"])
    env = {e["name"] for path, d in rendered_documents(hub2) if d["kind"] == "Deployment"
           for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"HUB2_API_KEY", "HUB2_MERCHANT_ID", "HUB2_WEBHOOK_SECRET"} <= env, env
    expect_failure("HUB2 without its credentials", {"hub2": {"baseUrl": "https://api.hub2.example"}})
    expect_failure("routes that are not COUNTRY:provider", {"config": {"routes": "CI=hub2"}})
    expect_failure("grace period not above the drain", {"terminationGracePeriodSeconds": 10})
    expect_failure("a bad value", {"config": {"logFormat": "xml"}})
    expect_failure("TLS without its secret", {"tls": {"enabled": True}})


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, helm.HelmError, kubernetes_validate.ValidationError) as error:
        print(f"helm check failed: {error}", file=sys.stderr)
        sys.exit(1)
