"""infra/grafana/kscaler.json: an importable Grafana dashboard on kscaler's Pushgateway metrics
and kube-state-metrics. No Grafana can run here (Debian has no grafana package, PyPI none that
runs a server), so it is checked by: Grafana's typed dashboard model (grafana-foundation-sdk)
reading it back without losing a field; structural checks of what an import needs; every
metric an expression names being one the binary pushes (parsed from Pushgateway.swift) or one
of kube-state-metrics' listed below; promtool parsing every expression; and a real Prometheus,
scraping a Pushgateway real kscaler runs pushed to and the sandbox's kube-state-metrics,
answering every expression (with data, unless its metrics only exist with pools, schedules or
a hold, which the runs do not have)."""
import json
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import REPO, which

DASHBOARD = REPO / "infra/grafana/kscaler.json"
PUSHGATEWAY_SWIFT = REPO / "Sources/KScaler/Pushgateway.swift"

# kube-state-metrics' names the dashboard uses (kube-state-metrics docs, "node" and "pod"
# metrics); the sandbox's exporter serves them as kube-state-metrics does.
KUBE_STATE_METRICS = {"kube_node_status_condition", "kube_pod_status_unschedulable"}
# Pushed only with pools, active schedules or an operator's hold, none of which the runs have.
CONDITIONAL = re.compile(r"kscaler_pool_\w+|kscaler_unservable_pods|kscaler_(min|max)_nodes|kscaler_hold_target_nodes|kscaler_schedules_active")

PROMQL_WORDS = {
    # functions and aggregations the dashboard may use
    "abs", "avg", "ceil", "changes", "clamp_min", "count", "delta", "floor", "increase", "label_values", "max",
    "max_over_time", "min", "min_over_time", "rate", "resets", "round", "scalar", "sum", "sum_over_time", "time",
    "timestamp", "vector",
    # keywords
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
}

# Fields Grafana's exports carry that the foundation SDK's typed model has no place for: the
# Prometheus annotation's own settings, the built-in annotation flag, a query variable's
# definition text.
SDK_UNMODELLED = {"builtIn", "step", "titleFormat", "textFormat", "tagKeys", "useValueForTime", "definition"}


def dashboard():
    return json.loads(DASHBOARD.read_text())


def panels():
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions():
    """(where, expr) of every panel target and annotation query."""
    out = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in panels() for t in p["targets"]]
    out += [(f"annotation {a['name']!r}", a["expr"]) for a in dashboard()["annotations"]["list"] if "expr" in a]
    return out


def pushed_metrics():
    return set(re.findall(r'gauge\("(kscaler_\w+)"', PUSHGATEWAY_SWIFT.read_text()))


def substitute(expr, cluster="demo"):
    """Grafana's variables as Grafana would fill them in."""
    return expr.replace("$cluster", cluster).replace("$__rate_interval", "1m").replace("$__interval", "15s")


def metric_names(expr):
    """The identifiers of a PromQL expression that are not functions, keywords, label names
    or durations: its metric names."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    return {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text) if w not in PROMQL_WORDS}


# ---------------------------------------------------------------------------------------------
# The model


def test_grafanas_typed_model_reads_every_field_back():
    from grafana_foundation_sdk.models.dashboard import Dashboard

    model = dashboard()
    back = json.loads(json.dumps(Dashboard.from_json(model).to_json(), default=lambda o: o.to_json()))

    def lost(ours, theirs, path="$"):
        if isinstance(ours, dict):
            return [p for key, value in ours.items() if key not in SDK_UNMODELLED
                    for p in ([f"{path}.{key}"] if key not in theirs else lost(value, theirs[key], f"{path}.{key}"))]
        if isinstance(ours, list):
            if not isinstance(theirs, list) or len(ours) != len(theirs):
                return [path]
            return [p for i, (a, b) in enumerate(zip(ours, theirs)) for p in lost(a, b, f"{path}[{i}]")]
        return [] if ours == theirs else [f"{path}: {ours!r} became {theirs!r}"]

    exported = {k: v for k, v in model.items() if k not in ("__inputs", "__requires")}  # export-only sections
    assert lost(exported, back) == []
    # And the check sees a misspelt key: it would be dropped.
    broken = json.loads(json.dumps(exported))
    broken["panels"][1]["tagets"] = broken["panels"][1].pop("targets")
    again = json.loads(json.dumps(Dashboard.from_json(broken).to_json(), default=lambda o: o.to_json()))
    assert "$.panels[1].tagets" in lost(broken, again)


def test_importable_with_one_prometheus_input_and_a_cluster_variable():
    model = dashboard()
    [source] = model["__inputs"]
    assert (source["type"], source["pluginId"], source["name"]) == ("datasource", "prometheus", "DS_PROMETHEUS")
    reference = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for panel in panels():
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"] and all(t["datasource"] == reference for t in panel["targets"]), panel["title"]
    [variable] = model["templating"]["list"]
    assert (variable["name"], variable["type"], variable["datasource"]) == ("cluster", "query", reference)
    assert variable["query"]["query"] == "label_values(kscaler_last_run_timestamp_seconds, cluster)"
    assert model["uid"] == "kscaler" and model["schemaVersion"] >= 36 and "id" not in model
    # Every kscaler metric is read for the chosen cluster only.
    for where, expr in expressions():
        for selector in re.findall(r"kscaler_\w+(\{[^}]*\})?", expr):
            assert 'cluster="$cluster"' in selector, f"{where}: {expr}"


def test_panels_are_laid_out_without_overlap_on_grafanas_24_columns():
    boxes = []
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for other, h in boxes:
            overlap = g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]
            assert not overlap, (panel["title"], other)
        boxes.append((panel["title"], g))


def test_it_shows_what_the_issue_asks_for():
    """Runs and outcomes, nodes managed/Ready/booting/desired (per pool too), unschedulable
    pods, hold, and scale actions as annotations."""
    text = " ".join(expr for _, expr in expressions())
    legends = {t.get("legendFormat") for p in panels() for t in p["targets"]}
    for metric in ("kscaler_last_run_outcome", "kscaler_last_run_timestamp_seconds", "kscaler_managed_nodes", "kscaler_ready_nodes",
                   "kscaler_desired_nodes", "kscaler_booting_nodes", "kscaler_pool_booting_nodes", "kscaler_pool_managed_nodes", "kscaler_pool_ready_nodes", "kscaler_pool_desired_nodes",
                   "kscaler_unschedulable_pods", "kube_pod_status_unschedulable", "kscaler_hold_active"):
        assert metric in text, metric
    assert {"booting", "{{pool}} booting"} <= legends
    annotations = {a["name"]: a for a in dashboard()["annotations"]["list"] if "expr" in a}
    assert 'kind="launch"' in annotations["kscaler launches"]["expr"]
    assert "terminate" in annotations["kscaler terminations"]["expr"]


# ---------------------------------------------------------------------------------------------
# The expressions


def test_every_metric_is_pushed_by_kscaler_or_exported_by_kube_state_metrics():
    pushed = pushed_metrics()
    assert {"kscaler_last_run_outcome", "kscaler_managed_nodes", "kscaler_last_run_instances"} <= pushed  # the parse works
    for where, expr in expressions():
        unknown = metric_names(expr) - pushed - KUBE_STATE_METRICS
        assert not unknown, f"{where}: {sorted(unknown)} is neither pushed by kscaler nor a kube-state-metrics metric"
    # The check catches a misspelt name.
    assert metric_names('max(kscaler_manged_nodes{cluster="x"}) by (pool)') - pushed == {"kscaler_manged_nodes"}


def test_promtool_parses_every_expression(tmp_path):
    promtool = which("promtool")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expression_{i}", "expr": substitute(expr)} for i, (_, expr) in enumerate(expressions())]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in result.stdout
    # And promtool does refuse a broken one.
    rules["groups"][0]["rules"].append({"record": "dashboard:broken", "expr": "max(kscaler_managed_nodes"})
    path.write_text(yaml.safe_dump(rules))
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, timeout=60).returncode != 0


def query_range(url, expr, start, end):
    data = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}).encode()
    try:
        with urllib.request.urlopen(url + "/api/v1/query_range", data=data, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.parametrize("where, expr", expressions())
def test_a_real_prometheus_answers_the_expression_from_real_runs(kscaler_runs, where, expr):
    if "terminate" in expr:
        # The runs terminate nothing: the series must exist (at 0), the annotation stays empty.
        assert expr.endswith(" > 0")
        expr = expr[:-len(" > 0")]
    status, body = query_range(kscaler_runs.prometheus_url, substitute(expr, kscaler_runs.cluster_id),
                               kscaler_runs.started, time.time())
    assert status == 200, f"{where}: {body}"
    if CONDITIONAL.search(expr) and not re.search(r"kscaler_(?!pool_|unservable|min_nodes|max_nodes|hold_target|schedules)\w+|kube_\w+", expr):
        return  # only metrics the runs cannot have
    assert body["data"]["result"], f"{where}: no data for {substitute(expr, kscaler_runs.cluster_id)}"
