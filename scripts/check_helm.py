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


def expect_failure(case, values, mentions=None):
    try:
        list(rendered_documents(values))
    except helm.HelmError as error:
        assert mentions is None or mentions in str(error), f"{case}: {mentions!r} not in {error}"
        print(f"helm {case}: refused as expected ({type(error).__name__})")
        return
    raise AssertionError(f"{case}: should not render")


def rendered(values, kind):
    return [d for _, d in rendered_documents(values) if d["kind"] == kind]


def config_data(values):
    return rendered(values, "ConfigMap")[0]["data"]


def container_env(values):
    pod = rendered(values, "Deployment")[0]["spec"]["template"]["spec"]
    return {e["name"]: e for e in pod["containers"][0].get("env", [])}


REDIS_VARIABLES = {"PAYMENTS_REDIS_URL", "PAYMENTS_REDIS_CLUSTER_URLS", "PAYMENTS_REDIS_SENTINELS",
                   "PAYMENTS_REDIS_SENTINEL_MASTER"}


def check_redis_topologies():
    """The three Redis topologies (contract §10), each plain or from the Secret, and the
    combinations the service would refuse at start, refused at render instead."""
    data = config_data({})
    assert not REDIS_VARIABLES & set(data) and data["PAYMENTS_REDIS_WAIT_REPLICAS"] == "0", data

    seeds = "redis://redis-cluster-0.redis:6379,redis://redis-cluster-1.redis:6379"
    cluster = {"redis": {"clusterUrls": seeds}}
    validate("redis cluster", cluster, ["Deployment", "ConfigMap"])
    data = config_data(cluster)
    assert data["PAYMENTS_REDIS_CLUSTER_URLS"] == seeds, data
    assert REDIS_VARIABLES & set(data) == {"PAYMENTS_REDIS_CLUSTER_URLS"}, data

    secret_seeds = "redis://:pw@redis-cluster-0.redis:6379,redis://:pw@redis-cluster-1.redis:6379"
    from_secret = {"redis": {"clusterUrlsFromSecret": True},
                   "secrets": {"redisClusterUrls": secret_seeds}}
    validate("redis cluster from the Secret", from_secret, ["Deployment", "ConfigMap", "Secret"])
    assert not REDIS_VARIABLES & set(config_data(from_secret))
    assert rendered(from_secret, "Secret")[0]["stringData"]["PAYMENTS_REDIS_CLUSTER_URLS"] == secret_seeds
    reference = container_env(from_secret)["PAYMENTS_REDIS_CLUSTER_URLS"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "pg-payments-gateway", "key": "PAYMENTS_REDIS_CLUSTER_URLS"}, reference
    existing = {"redis": {"clusterUrlsFromSecret": True}, "secrets": {"existingSecret": "creds"}}
    validate("redis cluster from an existing Secret", existing, ["Deployment", "ConfigMap"])
    reference = container_env(existing)["PAYMENTS_REDIS_CLUSTER_URLS"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "creds", "key": "PAYMENTS_REDIS_CLUSTER_URLS"}, reference

    sentinel = {"redis": {"sentinels": "sentinel-0:26379,sentinel-1:26379,sentinel-2:26379",
                          "sentinelMaster": "payments", "waitReplicas": 1}}
    validate("redis sentinel, waitReplicas 1", sentinel, ["Deployment", "ConfigMap"])
    data = config_data(sentinel)
    assert data["PAYMENTS_REDIS_SENTINELS"] == "sentinel-0:26379,sentinel-1:26379,sentinel-2:26379"
    assert data["PAYMENTS_REDIS_SENTINEL_MASTER"] == "payments"
    assert data["PAYMENTS_REDIS_WAIT_REPLICAS"] == "1"
    assert REDIS_VARIABLES & set(data) == {"PAYMENTS_REDIS_SENTINELS", "PAYMENTS_REDIS_SENTINEL_MASTER"}
    assert "PAYMENTS_REDIS_CLUSTER_URLS" not in container_env(sentinel)

    expect_failure("two redis topologies", {"redis": {"url": "redis://one:6379", "clusterUrls": seeds}},
                   mentions="set here: redis.url, redis.clusterUrls")
    expect_failure("one Redis from the Secret and sentinels",
                   {"redis": {"urlFromSecret": True, "sentinels": "s:26379", "sentinelMaster": "m"},
                    "secrets": {"redisUrl": "redis://one:6379"}},
                   mentions="set here: redis.urlFromSecret, redis.sentinels")
    expect_failure("sentinels without their master", {"redis": {"sentinels": "s:26379"}},
                   mentions="redis.sentinelMaster")
    expect_failure("a sentinel master without sentinels", {"redis": {"sentinelMaster": "m"}},
                   mentions="only used with redis.sentinels")
    expect_failure("cluster seeds from the Secret, none given", {"redis": {"clusterUrlsFromSecret": True}},
                   mentions="secrets.redisClusterUrls")
    expect_failure("waitReplicas without a Redis", {"redis": {"waitReplicas": 1}}, mentions="needs a Redis")
    expect_failure("waitReplicas above 16", {"redis": {"url": "redis://one:6379", "waitReplicas": 17}})
    expect_failure("a cluster seed that is not a URL", {"redis": {"clusterUrls": "redis://a:6379,b:6379"}})
    expect_failure("a sentinel that is not host:port", {"redis": {"sentinels": "s", "sentinelMaster": "m"}})


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
    check_redis_topologies()


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, helm.HelmError, kubernetes_validate.ValidationError) as error:
        print(f"helm check failed: {error}", file=sys.stderr)
        sys.exit(1)
