"""The chart's monitoring: alert rules that promtool checks and unit-tests (every alert firing and
staying quiet), a runbook per alert, ServiceMonitor/PodMonitors that select what the chart runs,
release-scoped rules, and Grafana dashboards (valid JSON, a panel for every metric docs/metrics.md
lists, nothing docs/metrics.md does not list). CRD validity of the rendered objects is checked
with the other custom resources (test_chart_render.py, gpu-prod values: everything on)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
RULES = CHART / "files" / "prometheus-rules.yaml"
DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))
PROMTOOL_TESTS = sorted((Path(__file__).parent / "promtool").glob("*_test.yaml"))
RUNBOOKS = REPO / "docs" / "runbooks.md"
METRICS_DOC = REPO / "docs" / "metrics.md"
ALL_ON = CHART / "ci" / "gpu-prod-values.yaml"
DEFAULT_RUNBOOKS = "https://github.com/tailorline/tailorline/blob/main/docs/runbooks.md"
#: Series every Prometheus has, or families docs/metrics.md names with a wildcard.
NOT_OURS = re.compile(r"^(up|process_\w+|python_gc_\w+|vector|time)$")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool not found: install Debian's `prometheus` package "
            "(apt-get install --no-install-recommends prometheus; .ci/run does)"
        )
    return found


def _alerts() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _template(helm, *extra: str) -> list[dict[str, Any]]:
    args = ["template", "rel", str(CHART), "--namespace", "tl-test", "--kube-version", "1.31.0"]
    result = helm(*args, *extra)
    assert result.returncode == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d]


# --------------------------------------------------------------------------- rules


def test_rule_file_passes_promtool_check():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_rendered_release_rules_pass_promtool_check(render, tmp_path):
    """What the chart renders (namespace/instance matchers added, overrides applied) is valid."""
    rule = render(ALL_ON).one("PrometheusRule")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    assert PROMTOOL_TESTS, "no promtool tests under tests/helm/promtool/"
    result = subprocess.run(
        [_promtool(), "test", "rules", *map(str, PROMTOOL_TESTS)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(PROMTOOL_TESTS), result.stdout


def test_every_alert_is_unit_tested_firing_and_quiet():
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in PROMTOOL_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fired == set(), "alerts never seen firing in a promtool test"
    assert names - quiet == set(), "alerts never checked to stay quiet in a promtool test"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_has_severity_summary_and_a_runbook_section():
    anchors = {
        _anchor(line.lstrip("#"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        url = alert["annotations"]["runbook_url"]
        assert url == f"{DEFAULT_RUNBOOKS}#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbooks.md has no '## {name}' section"


def test_rendered_rules_are_scoped_to_the_release_and_take_the_overrides(helm):
    objs = _template(
        helm,
        "--set",
        "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true",
        "--set",
        "monitoring.prometheusRule.runbookBaseUrl=https://wiki.example.com/tl/runbooks/",
        "--set-json",
        'monitoring.prometheusRule.disabled=["TailorlinePlansHittingTimeLimit"]',
        "--set",
        "monitoring.prometheusRule.severities.TailorlineRetrainsFailing=critical",
        "--set",
        "monitoring.prometheusRule.additionalLabels.team=planning",
        "--set",
        "monitoring.prometheusRule.forecastOutOfBoundsFor=3w",
    )
    (rule,) = [o for o in objs if o["kind"] == "PrometheusRule"]
    rendered = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(rendered) == {a["alert"] for a in _alerts()} - {"TailorlinePlansHittingTimeLimit"}
    scoped = (
        'app_kubernetes_io_part_of="tailorline",namespace="tl-test",'
        'app_kubernetes_io_instance="rel"'
    )
    for name, r in rendered.items():
        selectors = re.findall(r"\{[^}]*\}", r["expr"])
        metric_selectors = [s for s in selectors if "=" in s]
        assert metric_selectors and all(scoped in s for s in metric_selectors), (name, r["expr"])
        assert r["annotations"]["runbook_url"] == (
            f"https://wiki.example.com/tl/runbooks#{name.lower()}"
        )
        assert r["labels"]["team"] == "planning"
    assert rendered["TailorlineRetrainsFailing"]["labels"]["severity"] == "critical"
    assert rendered["TailorlineGatewayDown"]["labels"]["severity"] == "critical"
    assert rendered["TailorlineForecastAccuracyOutOfBounds"]["for"] == "3w"
    assert rendered["TailorlineForecastCoverageOutOfBounds"]["for"] == "3w"
    assert rendered["TailorlinePlanFailureRate"]["for"] == "15m"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "monitoring.prometheusRule.enabled=true"],
            "monitoring.prometheusRule.enabled=true needs monitoring.serviceMonitor.enabled=true",
        ),
        (
            [
                "--set",
                "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true",
                "--set-json",
                'monitoring.prometheusRule.disabled=["TailorlineGatewayDwn"]',
            ],
            "monitoring.prometheusRule: no alert named TailorlineGatewayDwn",
        ),
    ],
    ids=["rules-without-scrape", "typo-in-an-alert-name"],
)
def test_rule_values_that_cannot_work_fail_naming_the_key(helm, args, message):
    result = helm("template", "rel", str(CHART), *args)
    assert result.returncode != 0
    assert message in result.output


# --------------------------------------------------------------------------- scraping


def test_defaults_render_no_monitoring_objects(default_render):
    """Off by default: without prometheus-operator's CRDs a ServiceMonitor fails the install."""
    kinds = {o["kind"] for o in default_render.objects}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert not [
        cm
        for cm in default_render.of_kind("ConfigMap")
        if "grafana_dashboard" in cm["metadata"]["labels"]
    ]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selector["matchLabels"].items() <= labels.items()


def test_monitors_select_the_components_on_their_metrics_ports(render, pods):
    rendered = render(ALL_ON)
    specs = pods(rendered)
    (sm,) = rendered.of_kind("ServiceMonitor")
    services = [
        s
        for s in rendered.of_kind("Service")
        if _selects(sm["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert [s["metadata"]["name"] for s in services] == ["rel-tailorline-gateway"]
    (port,) = [p for p in services[0]["spec"]["ports"] if p["name"] == "metrics"]
    assert port["port"] == 9464 and sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["tl-test"]}

    monitors = {
        m["metadata"]["labels"]["app.kubernetes.io/component"]: m
        for m in rendered.of_kind("PodMonitor")
    }
    assert set(monitors) == {"predictor", "optimizer"}
    for component, monitor in monitors.items():
        selected = [p for p in specs if _selects(monitor["spec"]["selector"], p.labels)]
        assert {p.component for p in selected} == {component}, component
        endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        for pod in selected:
            ports = {p["name"]: p["containerPort"] for p in pod.spec["containers"][0]["ports"]}
            assert ports.get(endpoint["port"]) == 8080, (pod.where, ports)
    # the optimizer monitor covers the Ray head and every worker group
    roles = {
        p.labels["tailorline.io/ray-role"]
        for p in specs
        if p.where.startswith("RayService/")
        and _selects(monitors["optimizer"]["spec"]["selector"], p.labels)
    }
    assert roles == {"head", "worker"}
    for monitor in [sm, *monitors.values()]:
        assert {
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        } <= set(monitor["spec"]["podTargetLabels"])
        # the label kube-prometheus-stack's Prometheus selects by (monitoring.labels)
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_scraped_pods_carry_the_labels_the_rules_group_by(render, pods):
    """podTargetLabels copy pod labels that every scraped pod must have."""
    for pod in pods(render(ALL_ON)):
        if pod.component in ("gateway", "predictor", "optimizer"):
            assert pod.labels["app.kubernetes.io/part-of"] == "tailorline", pod.where
            assert pod.labels["app.kubernetes.io/instance"] == "rel", pod.where


# --------------------------------------------------------------------------- dashboards


def documented_metrics() -> set[str]:
    """Metric names docs/metrics.md lists: the first column of its tables, and the Ray names."""
    names = set()
    for line in METRICS_DOC.read_text().splitlines():
        if line.startswith("| `"):
            names.add(line.split("`")[1])
        elif "ray_serve_" in line:
            names.update(re.findall(r"`(ray_serve_\w+)`", line))
    return {n for n in names if not n.endswith("*")}


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


#: PromQL's functions, aggregations and keywords that look like identifiers.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "absent",
    "time", "vector", "min_over_time", "max_over_time", "and", "or", "unless", "bool",
    "offset", "humanizePercentage", "printf", "inf", "group_left", "group_right",
}  # fmt: skip


def _metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (histogram series folded to their base name)."""
    expr = re.sub(r'"[^"]*"', "", expr)  # label values, strings
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers, ranges
    expr = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", expr)) - PROMQL_WORDS
    return {re.sub(r"_(bucket|sum|count)$", "", w) for w in words}


def test_dashboards_are_grafana_json_with_distinct_uids():
    assert len(DASHBOARDS) == 2, DASHBOARDS
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        assert dashboard["title"].startswith("tailorline / ")
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        assert {"datasource", "namespace", "instance"} <= variables, path.name
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        assert len(panels) >= 10, path.name
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels:
            assert panel["targets"] and panel["title"] and panel["description"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                if "vector(" not in target["expr"]:
                    assert 'namespace="$namespace"' in target["expr"], target["expr"]
                    assert 'app_kubernetes_io_instance="$instance"' in target["expr"], target[
                        "expr"
                    ]
    assert uids == {"tailorline-service", "tailorline-decisions"}


def test_dashboards_have_a_panel_for_every_documented_metric():
    listed = documented_metrics()
    assert len(listed) >= 30, listed  # docs/metrics.md's tables were read
    shown = set()
    for path in DASHBOARDS:
        for expr in _exprs(json.loads(path.read_text())):
            shown |= _metric_names(expr)
    assert listed - shown == set(), "documented metrics without a dashboard panel"


def test_dashboards_and_rules_use_only_documented_metrics():
    listed = documented_metrics()
    used: dict[str, str] = {}
    for path in DASHBOARDS:
        for expr in _exprs(json.loads(path.read_text())):
            used.update({n: path.name for n in _metric_names(expr)})
    for alert in _alerts():
        used.update({n: alert["alert"] for n in _metric_names(alert["expr"])})
    unknown = {n: where for n, where in used.items() if n not in listed and not NOT_OURS.match(n)}
    assert not unknown, f"not in docs/metrics.md: {unknown}"


def test_dashboard_configmaps_carry_the_sidecar_label_and_the_files(render):
    rendered = render(ALL_ON)
    maps = [
        cm
        for cm in rendered.of_kind("ConfigMap")
        if "grafana_dashboard" in cm["metadata"]["labels"]
    ]
    assert len(maps) == len(DASHBOARDS)
    files = {p.name: p.read_text() for p in DASHBOARDS}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "tailorline"
        ((key, text),) = cm["data"].items()
        assert text == files[key]  # byte for byte
