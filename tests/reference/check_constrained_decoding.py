#!/usr/bin/env python3
"""Constrained decoding with a real model: every output parses and validates.

Generates random JSON schemas (seeded) from the keywords src/hanul/generate/json_schema.h
supports -- objects with required and optional properties, nested objects, arrays with
minItems/maxItems, enums (Hangul strings included), const, strings with minLength/maxLength,
integers, numbers, booleans, null, type lists, $defs with $ref (one recursive), anyOf and
oneOf over disjoint branches -- and for each runs

    hanul run -m MODEL --json-schema FILE -p PROMPT --temp 0.8 --seed S -n N --no-display-prompt

(greedy, --temp 0, on the first --greedy of them too). Every output must parse (Python's json
module) and validate (the `jsonschema` package, Draft 2020-12). An output that does not parse
is re-run with --ids to count its tokens: if it used all N it was cut by -n, which is reported
as such -- and still fails: the generator keeps the grammar's shortest completion within the
tokens left, so a value always finishes. Valid outputs are counted too, to report how many
used the whole budget (closed by that rule rather than by the model's own choice).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import jsonschema

HANGUL = ["서울", "부산", "한글", "가나다", "하늘", "바다", "김치", "안녕하세요", "ㄱ", "힣"]
WORDS = ["red", "green", "blue", "cat", "dog", "Tim", "Lily", "happy", "sad", "park", "ball"]
KEYS = ["name", "age", "id", "color", "tags", "items", "size", "kind", "value", "count",
        "title", "note", "ok", "score", "list", "child", "pos", "meta", "이름", "나이", "도시"]


class SchemaGen:
    """Random schemas; depth bounds nesting, and sizes stay small so outputs fit in -n tokens."""

    def __init__(self, rng):
        self.rng = rng
        self.defs = {}

    def enum_values(self):
        r = self.rng
        pool = HANGUL + WORDS
        kind = r.random()
        if kind < 0.45:
            return r.sample(HANGUL, r.randint(1, 4))
        if kind < 0.7:
            return r.sample(pool, r.randint(1, 5))
        if kind < 0.85:
            return r.sample(range(-50, 1000), r.randint(1, 4))
        # Mixed scalars, and now and then a small structured value.
        vals = [r.choice(HANGUL), r.randint(-9, 99), None, True, False, 2.5]
        if r.random() < 0.3:
            vals.append({"k": r.choice(HANGUL), "n": [1, 2]})
        return r.sample(vals, r.randint(2, len(vals)))

    def string(self):
        r = self.rng
        s = {"type": "string"}
        mode = r.random()
        if mode < 0.5:
            lo = r.randint(0, 4)
            s["minLength"] = lo
            s["maxLength"] = lo + r.randint(0, 12)
        elif mode < 0.7:
            s["maxLength"] = r.randint(0, 20)
        elif mode < 0.8:
            s["minLength"] = r.randint(1, 6)
        return s

    def scalar(self):
        r = self.rng
        k = r.random()
        if k < 0.3:
            return self.string()
        if k < 0.45:
            return {"type": "integer"}
        if k < 0.55:
            return {"type": "number"}
        if k < 0.65:
            return {"type": "boolean"}
        if k < 0.7:
            return {"type": "null"}
        if k < 0.85:
            return {"enum": self.enum_values()}
        if k < 0.9:
            return {"const": r.choice(HANGUL + WORDS + [7, None, True])}
        return {"type": r.sample(["string", "integer", "boolean", "null", "number"], 2)}

    def array(self, depth):
        r = self.rng
        s = {"type": "array", "items": self.any(depth - 1)}
        lo = r.choice([0, 0, 1, 2])
        s["minItems"] = lo
        s["maxItems"] = lo + r.randint(0, 3)
        if r.random() < 0.15:
            del s["maxItems"]  # unbounded: the model must choose to close it
        if r.random() < 0.1:
            del s["minItems"]
        return s

    def obj(self, depth):
        r = self.rng
        keys = r.sample(KEYS, r.randint(0 if r.random() < 0.05 else 1, 5))
        props = {k: self.any(depth - 1) for k in keys}
        s = {"type": "object", "properties": props}
        req = [k for k in keys if r.random() < 0.6]
        if req or r.random() < 0.5:
            s["required"] = req
        if r.random() < 0.3:
            s["additionalProperties"] = False
        return s

    def ref(self, depth):
        r = self.rng
        if r.random() < 0.15:
            # A recursive definition: a tree whose children list is short and optional.
            self.defs["node"] = {
                "type": "object",
                "properties": {
                    "v": {"enum": HANGUL[:3]},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
                },
                "required": ["v"],
            }
            return {"$ref": "#/$defs/node"}
        name = f"d{len(self.defs)}"
        self.defs[name] = True  # reserve the name before a nested $ref picks one
        self.defs[name] = self.any(min(depth - 1, 1))
        return {"$ref": f"#/$defs/{name}"}

    def any_of(self, depth):
        r = self.rng
        if r.random() < 0.3:
            # oneOf: json_schema.h emits it as anyOf, so the branches must be disjoint.
            types = r.sample(["string", "integer", "boolean", "null"], r.randint(2, 3))
            alts = [self.string() if t == "string" else {"type": t} for t in types]
            return {"oneOf": alts}
        return {"anyOf": [self.any(depth - 1) for _ in range(r.randint(2, 3))]}

    def any(self, depth):
        r = self.rng
        if depth <= 0:
            return self.scalar()
        k = r.random()
        if k < 0.35:
            return self.scalar()
        if k < 0.55:
            return self.obj(depth)
        if k < 0.72:
            return self.array(depth)
        if k < 0.86:
            return self.ref(depth)
        return self.any_of(depth)

    def root(self):
        r = self.rng
        self.defs = {}
        k = r.random()
        if k < 0.7:
            s = self.obj(3)
        elif k < 0.8:
            s = self.array(2)
        elif k < 0.9:
            s = self.any_of(2)
        else:
            s = self.scalar()
        if self.defs:
            s["$defs"] = dict(self.defs)
        return s


def run_one(args, tmp, i, schema, temp, seed, ids=False):
    path = os.path.join(tmp, f"schema{i}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(schema, f, ensure_ascii=False)
    cmd = [args.hanul, "run", "-m", args.model, "--json-schema", path, "-p", args.prompt,
           "--temp", str(temp), "--seed", str(seed), "-n", str(args.n), "-t", "1",
           "--no-display-prompt"]
    if ids:
        cmd.append("--ids")
    p = subprocess.run(cmd, capture_output=True)
    return p


def check(args, tmp, i, schema, temp, seed):
    """Returns (ok, message, used all -n tokens)."""
    p = run_one(args, tmp, i, schema, temp, seed)
    if p.returncode != 0:
        return False, f"hanul exited {p.returncode}: {p.stderr.decode(errors='replace')}", False
    raw = p.stdout
    if raw.endswith(b"\n"):
        raw = raw[:-1]  # hanul run ends its output with a newline
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return False, f"output is not UTF-8: {e}: {raw!r}", False
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        q = run_one(args, tmp, i, schema, temp, seed, ids=True)
        n_tok = len(q.stdout.split())
        cut = n_tok >= args.n
        why = f"cut by -n {args.n}" if cut else f"stopped after {n_tok} tokens"
        return False, f"does not parse ({why}): {e}\n  output {text!r}", cut
    try:
        jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        return False, f"invalid: {e.message}\n  output {text!r}", False
    # The same run again with --ids counts its tokens: one that used all N finished only
    # because the generator kept the shortest completion within the budget.
    q = run_one(args, tmp, i, schema, temp, seed, ids=True)
    return True, text, len(q.stdout.split()) >= args.n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hanul", required=True, help="the hanul binary")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--model", default=os.path.join(here, "..", "..", "models", "default.gguf"))
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--greedy", type=int, default=20, help="how many also run with --temp 0")
    ap.add_argument("--seed", type=int, default=20240604)
    ap.add_argument("-n", type=int, default=400)
    ap.add_argument("--prompt", default="Once upon a time, the JSON was")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    gen = SchemaGen(rng)
    schemas = []
    for _ in range(args.count):
        s = gen.root()
        jsonschema.Draft202012Validator.check_schema(s)
        schemas.append(s)
    runs = [(i, schemas[i], 0.8, args.seed + i) for i in range(args.count)]
    runs += [(args.count + i, schemas[i], 0.0, 0) for i in range(min(args.greedy, args.count))]

    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: check(args, tmp, *r), runs))
    elapsed = time.time() - t0

    bad = {"sampled": 0, "greedy": 0}
    cut = {"sampled": 0, "greedy": 0}
    budget = {"sampled": 0, "greedy": 0}  # valid, and used all -n tokens
    lengths = []
    for (i, schema, temp, seed), (ok, msg, was_cut) in zip(runs, results):
        kind = "greedy" if temp == 0 else "sampled"
        if ok:
            lengths.append(len(msg))
            budget[kind] += was_cut
            if args.verbose:
                print(f"{kind} {i % args.count}: {msg}")
            continue
        bad[kind] += 1
        cut[kind] += was_cut
        print(f"{kind} schema {i % args.count} (--temp {temp} --seed {seed}): {msg}\n"
              f"  schema {json.dumps(schema, ensure_ascii=False)}")
    n_sampled = args.count
    n_greedy = min(args.greedy, args.count)
    print(f"sampled (--temp 0.8): {n_sampled - bad['sampled']}/{n_sampled} parse and validate, "
          f"{cut['sampled']} cut by -n {args.n}, {budget['sampled']} closed at the -n budget")
    print(f"greedy (--temp 0): {n_greedy - bad['greedy']}/{n_greedy} parse and validate, "
          f"{cut['greedy']} cut by -n {args.n}, {budget['greedy']} closed at the -n budget")
    if lengths:
        print(f"output length: mean {sum(lengths) / len(lengths):.0f} bytes, max {max(lengths)}; "
              f"{len(runs)} runs in {elapsed:.1f} s ({args.jobs} at a time; "
              f"jsonschema {version('jsonschema')})")
    return 1 if bad["sampled"] or bad["greedy"] else 0


if __name__ == "__main__":
    sys.exit(main())
