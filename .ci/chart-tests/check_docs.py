#!/usr/bin/env python3
"""Every value in values.yaml is listed in the chart README and described by the schema.

usage: check_docs.py CHART_DIR

A value is a leaf of values.yaml (a scalar, a list, or an empty map); the README
must mention each as `dotted.path`, or a free-form parent object (one the schema
does not break down, such as podSecurityContext) as a whole.
"""
import json
import sys

import yaml


def leaves(node, prefix=""):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def schema_node(schema, path):
    node = schema
    for part in path.split("."):
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif "properties" not in node and node.get("type") == "object":
            return {}  # free-form object: anything goes below it
        else:
            return None
    return node


def schema_has(schema, path):
    return schema_node(schema, path) is not None


def main():
    chart = sys.argv[1]
    values = yaml.safe_load(open(f"{chart}/values.yaml"))
    schema = json.load(open(f"{chart}/values.schema.json"))
    readme = open(f"{chart}/README.md").read()
    missing_doc, missing_schema = [], []
    for path in leaves(values):
        parts = path.split(".")
        # a free-form object (no "properties" in the schema) may be documented as a whole
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
        free = [a for a in ancestors if schema_node(schema, a) is not None and "properties" not in schema_node(schema, a)]
        if f"`{path}`" not in readme and not any(f"`{a}`" in readme for a in free):
            missing_doc.append(path)
        if not schema_has(schema, path):
            missing_schema.append(path)
    for p in missing_doc:
        print(f"    not in README.md: {p}")
    for p in missing_schema:
        print(f"    not in values.schema.json: {p}")
    return 1 if missing_doc or missing_schema else 0


if __name__ == "__main__":
    sys.exit(main())
