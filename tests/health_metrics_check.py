#!/usr/bin/python3
"""Parses the health metrics page (health_metrics_page) with prometheus_client's text
parser and checks the families, their types and the values the program recorded."""
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

page = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout
families = {f.name: f for f in text_string_to_metric_families(page)}


def value(family, sample_name, **labels):
    matches = [s.value for s in families[family].samples if s.name == sample_name and s.labels == labels]
    assert len(matches) == 1, f"{sample_name} {labels}: {len(matches)} samples"
    return matches[0]


expected_types = {
    "grayroute_breaker_state": "gauge",
    "grayroute_breaker_transitions": "counter",  # the parser drops _total from counter families
    "grayroute_upstream_outcomes": "counter",
    "grayroute_upstream_duration_seconds": "histogram",
    "grayroute_health_window_outcomes": "gauge",
    "grayroute_health_window_errors": "gauge",
    "grayroute_health_connect_failures_in_row": "gauge",
}
for name, kind in expected_types.items():
    assert name in families, f"missing family {name}; have {sorted(families)}"
    assert families[name].type == kind, f"{name}: {families[name].type}, expected {kind}"
assert set(families) == set(expected_types), f"unexpected families {set(families) - set(expected_types)}"

state = "grayroute_breaker_state"
assert value(state, state, route="gray", state="open") == 1
assert value(state, state, route="gray", state="closed") == 0
assert value(state, state, route="production", state="closed") == 1
assert value(state, state, route="beta-2", state="closed") == 1
assert value("grayroute_breaker_transitions", "grayroute_breaker_transitions_total", route="gray", to="open") == 1
outcomes = "grayroute_upstream_outcomes"
assert value(outcomes, outcomes + "_total", route="production", outcome="success") == 8
assert value(outcomes, outcomes + "_total", route="production", outcome="status_5xx") == 2
assert value(outcomes, outcomes + "_total", route="gray", outcome="connect_failure") == 3
h = "grayroute_upstream_duration_seconds"
assert value(h, h + "_bucket", route="production", le="0.005") == 8
assert value(h, h + "_bucket", route="production", le="0.25") == 8
assert value(h, h + "_bucket", route="production", le="0.5") == 10
assert value(h, h + "_bucket", route="production", le="+Inf") == 10
assert value(h, h + "_count", route="production") == 10
assert abs(value(h, h + "_sum", route="production") - 0.624) < 1e-9
assert value(h, h + "_bucket", route="gray", le="0.025") == 4
assert value("grayroute_health_window_errors", "grayroute_health_window_errors", route="gray") == 3
assert value("grayroute_health_connect_failures_in_row", "grayroute_health_connect_failures_in_row", route="gray") == 3
print(f"ok: {len(families)} families, {sum(len(f.samples) for f in families.values())} samples")
