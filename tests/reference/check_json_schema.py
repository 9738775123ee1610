#!/usr/bin/env python3
"""Re-validates hanul's grammar-constrained JSON with the `jsonschema` package.

Runs test_generate's random-schema test with HANUL_JSON_SCHEMA_DUMP set, which writes one
line per schema: {"schema": ..., "output": "<the generated text>"}. Every output must parse
as JSON (Python's json module) and validate against its schema (Draft 2020-12 validator).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version

import jsonschema


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="the test_generate binary")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "samples.jsonl")
        env = dict(os.environ, HANUL_JSON_SCHEMA_DUMP=dump)
        subprocess.run([args.tool, "--gtest_filter=JsonSchema.RandomSchemasRandomWalksAlwaysValidate"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        with open(dump, encoding="utf-8") as f:
            samples = [json.loads(line) for line in f]
    if len(samples) != 200:
        print(f"expected 200 samples, got {len(samples)}")
        return 1
    bad = 0
    kinds = {}
    for i, s in enumerate(samples):
        schema, text = s["schema"], s["output"]
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            print(f"sample {i}: does not parse: {e}\n  {text!r}")
            bad += 1
            continue
        kinds[type(value).__name__] = kinds.get(type(value).__name__, 0) + 1
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
        except jsonschema.ValidationError as e:
            print(f"sample {i}: invalid: {e.message}\n  schema {json.dumps(schema)}\n  output {text!r}")
            bad += 1
    print(f"{len(samples) - bad}/{len(samples)} outputs parse and validate (jsonschema "
          f"{version('jsonschema')}); top-level kinds: {kinds}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
