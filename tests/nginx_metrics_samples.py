#!/usr/bin/python3
"""Reads a Prometheus text page (a file) with prometheus_client's parser and prints one
line per sample, `name{label="value",...} value` with the labels sorted, for the nginx
tests to compare: the page is checked by a real parser, not by string matching."""
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as page:
    families = list(text_string_to_metric_families(page.read()))
for family in families:
    for sample in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        print(f"{sample.name}{{{labels}}} {sample.value:g}")
print(f"# {len(families)} families")
