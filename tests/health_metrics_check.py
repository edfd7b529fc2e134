#!/usr/bin/python3
"""Parses a grayroute health metrics page with prometheus_client's text parser.

  health_metrics_check.py PROGRAM
      runs PROGRAM (health_metrics_page), checks the families, their types and the
      values that program recorded.
  health_metrics_check.py --page FILE [EXPECTATION ...]
      reads a page an adapter served (the proxy's /-/grayroute/metrics), checks that the
      library's families are there with their types, then each expectation:
      name{label="value",...}=N (a missing sample counts as 0) or name{...}>=N.
"""
import re
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

expected_types = {
    "grayroute_breaker_state": "gauge",
    "grayroute_breaker_transitions": "counter",  # the parser drops _total from counter families
    "grayroute_upstream_outcomes": "counter",
    "grayroute_upstream_duration_seconds": "histogram",
    "grayroute_health_window_outcomes": "gauge",
    "grayroute_health_window_errors": "gauge",
    "grayroute_health_connect_failures_in_row": "gauge",
}


def parse(page):
    families = {f.name: f for f in text_string_to_metric_families(page)}
    for name, kind in expected_types.items():
        assert name in families, f"missing family {name}; have {sorted(families)}"
        assert families[name].type == kind, f"{name}: {families[name].type}, expected {kind}"
    return families


def samples(families, sample_name, labels):
    return [s.value for f in families.values() for s in f.samples if s.name == sample_name and s.labels == labels]


def check_page(path, expectations):
    with open(path, encoding="utf-8") as f:
        families = parse(f.read())
    for text in expectations:
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?(>=|=)([0-9.eE+-]+)', text)
        assert m, f"not an expectation: {text}"
        name, label_text, op, wanted = m.group(1), m.group(2) or "", m.group(3), float(m.group(4))
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', label_text))
        found = samples(families, name, labels)
        assert len(found) <= 1, f"{text}: {len(found)} samples"
        value = found[0] if found else 0.0
        ok = value == wanted if op == "=" else value >= wanted
        assert ok, f"{text}: the page says {value}"
    print(f"ok: {len(families)} families, {len(expectations)} expectations")


def check_program(program):
    page = subprocess.run([program], check=True, capture_output=True, text=True).stdout
    families = parse(page)
    assert set(families) == set(expected_types), f"unexpected families {set(families) - set(expected_types)}"

    def value(family, sample_name, **labels):
        matches = [s.value for s in families[family].samples if s.name == sample_name and s.labels == labels]
        assert len(matches) == 1, f"{sample_name} {labels}: {len(matches)} samples"
        return matches[0]

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


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--page":
        check_page(sys.argv[2], sys.argv[3:])
    else:
        check_program(sys.argv[1])
