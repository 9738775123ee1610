#!/usr/bin/env python3
"""hanul's GGUF and safetensors files against the trusted Python implementations.

- A GGUF written by hanul loads in gguf-py (GGUFReader) with the expected metadata (every
  value type) and tensor bytes; a GGUF written by gguf-py (GGUFWriter) loads in hanul with
  the same metadata and bytes; the stories260K fixture reads the same in both.
- A safetensors file written by hanul loads in `safetensors` with the same tensors and is
  byte-identical to what `safetensors.torch.save` writes for them; files and a sharded folder
  written by Python load in hanul identically.

Run by ctest (tests/formats.cmake):
  check_formats_interop.py --tool build/tests/formats_tool --fixture tests/fixtures/stories260K-f32.gguf
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from safetensors import safe_open
from safetensors.torch import save as st_save
from safetensors.torch import save_file as st_save_file

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}

failures = []
n_checks = 0


def check(cond, what):
    global n_checks
    n_checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def fnv1a(data: bytes) -> str:
    # The tool hashes tensor bytes with FNV-1a 64; numpy does it a byte at a time, vectorized
    # over 8 interleaved lanes would change the hash, so plain Python it is (files are small).
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return str(h)


def hanul_dump(tool, path):
    r = subprocess.run([tool, "dump", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"hanul could not read {path}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def same_value(a, b):
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
            same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return float(a) == float(b)
    return a == b


def compare_gguf(tool, path, label):
    """hanul's reading of a GGUF file must equal gguf-py's, key by key and byte by byte."""
    ours = hanul_dump(tool, path)
    ref = GGUFReader(path)
    ref_kv = {k: f for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    check(set(ref_kv) == set(ours["metadata"]),
          f"{label}: keys differ: {sorted(set(ref_kv) ^ set(ours['metadata']))}")
    for key, field in ref_kv.items():
        mine = ours["metadata"].get(key)
        if mine is None:
            continue
        check(mine["type"] == TYPE_NAMES[field.types[0]], f"{label}: type of {key}")
        if field.types[0] == GGUFValueType.ARRAY:
            check(mine["elem_type"] == TYPE_NAMES[field.types[1]], f"{label}: elem type of {key}")
        value = field.contents()
        check(same_value(mine["value"], value),
              f"{label}: value of {key}: hanul {str(mine['value'])[:80]} gguf-py {str(value)[:80]}")
    check(len(ref.tensors) == len(ours["tensors"]), f"{label}: tensor count")
    by_name = {t["name"]: t for t in ours["tensors"]}
    for t in ref.tensors:
        mine = by_name.get(t.name)
        check(mine is not None, f"{label}: tensor {t.name} missing in hanul")
        if mine is None:
            continue
        check(mine["dtype"] == t.tensor_type.name, f"{label}: dtype of {t.name}")
        # gguf-py keeps ggml's ne order (innermost first); hanul's shape is outermost first.
        check(mine["shape"] == [int(x) for x in reversed(list(t.shape))],
              f"{label}: shape of {t.name}: {mine['shape']} vs ne {list(t.shape)}")
        raw = t.data.tobytes()
        check(len(raw) == int(t.n_bytes) == mine["nbytes"], f"{label}: size of {t.name}")
        check(mine["fnv1a"] == fnv1a(raw), f"{label}: bytes of {t.name}")
    return ours, ref


def check_hanul_gguf(tool, tmp):
    path = os.path.join(tmp, "hanul_sample.gguf")
    subprocess.run([tool, "write-sample", path], check=True)
    ours, ref = compare_gguf(tool, path, "hanul-written gguf")
    expected = {
        "s.u8": 200, "s.i8": -100, "s.u16": 60000, "s.i16": -30000, "s.u32": 4000000000,
        "s.i32": -2000000000, "s.f32": float(np.float32(0.1)), "s.bool": True,
        "s.string": "hànul 한글", "s.u64": 18000000000000000000,
        "s.i64": -9000000000000000000, "s.f64": 2.718281828459045,
        "a.string": ["<unk>", "", "▁the"],
        "a.f32": [0.5, -1.25, float(np.float32(3e-8))], "a.i32": [-7, 0, 2147483647],
        "a.u32": [0, 4294967295], "a.u8": [1, 2, 255], "a.i16": [-32768, 32767],
        "a.u64": [1 << 63], "a.i64": [-1, 1], "a.f64": [1e-300, 1e300], "a.bool": [True, False],
    }
    for key, want in expected.items():
        check(key in ref.fields and same_value(ref.fields[key].contents(), want),
              f"hanul-written gguf: gguf-py reads {key} as "
              f"{ref.fields[key].contents() if key in ref.fields else None}, expected {want}")
    # Writer order is insertion order; tensor data is aligned to 32 bytes.
    check(list(k for k in ref.fields if not k.startswith("GGUF."))[0] == "general.architecture",
          "hanul-written gguf: metadata order")
    for t in ref.tensors:
        check(t.data_offset % 32 == 0, f"hanul-written gguf: {t.name} unaligned")
    check(len(ref.tensors) == 12, "hanul-written gguf: 12 tensors")


def check_python_gguf(tool, tmp):
    rng = np.random.default_rng(7)
    for alignment in (32, 64):
        path = os.path.join(tmp, f"gguf_py_{alignment}.gguf")
        w = GGUFWriter(path, "llama")
        if alignment != 32:
            w.add_custom_alignment(alignment)
        w.add_uint8("s.u8", 7)
        w.add_int8("s.i8", -7)
        w.add_uint16("s.u16", 65535)
        w.add_int16("s.i16", -1)
        w.add_uint32("s.u32", 123456789)
        w.add_int32("s.i32", -123456789)
        w.add_float32("s.f32", 1.0e-5)
        w.add_uint64("s.u64", 1 << 40)
        w.add_int64("s.i64", -(1 << 40))
        w.add_float64("s.f64", 0.1)
        w.add_bool("s.bool", False)
        w.add_string("s.string", "안녕하세요 hello")
        w.add_array("a.string", ["a", "bb", "ccc"])
        w.add_array("a.i32", [1, -2, 3])
        w.add_array("a.f32", [0.25, 1.5])
        w.add_array("a.bool", [True, False, True])
        for sub, vals in ((GGUFValueType.UINT8, [0, 255]), (GGUFValueType.INT16, [-5, 5]),
                          (GGUFValueType.UINT64, [1 << 60]), (GGUFValueType.FLOAT64, [1e-9])):
            w.add_key_value(f"a.{TYPE_NAMES[sub]}", vals, GGUFValueType.ARRAY, sub_type=sub)
        w.add_tensor("f32", rng.standard_normal((3, 8)).astype(np.float32))
        w.add_tensor("f16", rng.standard_normal((2, 4, 6)).astype(np.float16))
        w.add_tensor("f64", rng.standard_normal((5,)).astype(np.float64))
        w.add_tensor("i8", rng.integers(-128, 127, (4, 4)).astype(np.int8))
        w.add_tensor("i16", rng.integers(-999, 999, (3,)).astype(np.int16))
        w.add_tensor("i32", rng.integers(-999, 999, (2, 2)).astype(np.int32))
        w.add_tensor("i64", rng.integers(-999, 999, (1, 1, 2, 3)).astype(np.int64))
        # Quantized and bf16 tensors as raw bytes: gguf-py derives the shape from the bytes.
        for name, qt, rows, row_bytes in (("bf16", GGMLQuantizationType.BF16, 2, 16),
                                          ("q8_0", GGMLQuantizationType.Q8_0, 3, 34 * 2),
                                          ("q4_k", GGMLQuantizationType.Q4_K, 2, 144),
                                          ("q6_k", GGMLQuantizationType.Q6_K, 1, 210 * 2)):
            w.add_tensor(name, rng.integers(0, 255, (rows, row_bytes)).astype(np.uint8), raw_dtype=qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        ours, _ = compare_gguf(tool, path, f"gguf-py-written gguf (alignment {alignment})")
        shapes = {t["name"]: t["shape"] for t in ours["tensors"]}
        check(shapes.get("f16") == [2, 4, 6] and shapes.get("q8_0") == [3, 64] and
              shapes.get("q6_k") == [1, 512] and shapes.get("bf16") == [2, 8],
              f"gguf-py-written gguf: shapes {shapes}")


def st_bytes(t):
    ints = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.contiguous().view(ints[t.element_size()]).numpy().tobytes()


ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.float64: "F64", torch.int8: "I8", torch.int16: "I16", torch.int32: "I32",
            torch.int64: "I64"}


def compare_safetensors(ours_tensors, path_or_tensors, label):
    if isinstance(path_or_tensors, dict):
        ref = path_or_tensors
    else:
        with safe_open(path_or_tensors, framework="pt") as f:
            ref = {k: f.get_tensor(k) for k in f.keys()}
    mine = {t["name"]: t for t in ours_tensors}
    check(set(mine) == set(ref), f"{label}: names differ: {sorted(set(mine) ^ set(ref))}")
    for name, t in ref.items():
        m = mine.get(name)
        if m is None:
            continue
        check(m["dtype"] == ST_NAMES[t.dtype], f"{label}: dtype of {name}")
        check(m["shape"] == list(t.shape), f"{label}: shape of {name}")
        check(m["fnv1a"] == fnv1a(st_bytes(t)), f"{label}: bytes of {name}")
    return ref


def check_safetensors(tool, tmp):
    # hanul writes; safetensors reads, and writes the very same bytes for the same tensors.
    path = os.path.join(tmp, "hanul_sample.safetensors")
    subprocess.run([tool, "write-sample", path], check=True)
    ours = hanul_dump(tool, path)
    ref = compare_safetensors(ours["tensors"], path, "hanul-written safetensors")
    with safe_open(path, framework="pt") as f:
        check(f.metadata() == {"format": "pt"}, "hanul-written safetensors: metadata")
    with open(path, "rb") as fh:
        check(fh.read() == st_save(ref, metadata={"format": "pt"}),
              "hanul-written safetensors: bytes differ from safetensors.torch.save")

    # Python writes; hanul reads.
    g = torch.Generator().manual_seed(3)
    tensors = {
        "w.f32": torch.randn(4, 3, generator=g), "w.f16": torch.randn(5, generator=g).half(),
        "w.bf16": torch.randn(2, 2, 2, generator=g).bfloat16(),
        "w.f64": torch.randn(3, generator=g).double(),
        "w.i8": torch.randint(-100, 100, (6,), generator=g, dtype=torch.int8),
        "w.i16": torch.randint(-100, 100, (2, 3), generator=g, dtype=torch.int16),
        "w.i32": torch.randint(-100, 100, (7,), generator=g, dtype=torch.int32),
        "w.i64": torch.tensor(12345, dtype=torch.int64),
    }
    path = os.path.join(tmp, "py.safetensors")
    st_save_file(tensors, path, metadata={"format": "pt", "who": "python"})
    ours = hanul_dump(tool, path)
    compare_safetensors(ours["tensors"], tensors, "python-written safetensors")
    check(ours["metadata"] == {"format": "pt", "who": "python"}, "python-written: metadata")

    # A sharded Hugging Face folder, laid out the way transformers' save_pretrained does.
    folder = os.path.join(tmp, "hf_model")
    os.makedirs(folder)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:4],
              "model-00002-of-00002.safetensors": names[4:]}
    weight_map = {}
    for fname, keys in shards.items():
        st_save_file({k: tensors[k] for k in keys}, os.path.join(folder, fname),
                     metadata={"format": "pt"})
        weight_map.update({k: fname for k in keys})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, fh, indent=2)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        fh.write('{"model_type": "llama"}')
    ours = hanul_dump(tool, folder)
    compare_safetensors(ours["tensors"], tensors, "python-written sharded folder")
    check(ours["config_json"] == '{"model_type": "llama"}', "sharded folder: config.json")

    # A dtype hanul has no type for is refused with a message naming it.
    path = os.path.join(tmp, "bool.safetensors")
    st_save_file({"x": torch.zeros(3, dtype=torch.bool)}, path)
    r = subprocess.run([tool, "dump", path], capture_output=True, text=True)
    check(r.returncode != 0 and "BOOL" in r.stderr and path in r.stderr,
          f"unsupported dtype: {r.returncode} {r.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--fixture", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        compare_gguf(args.tool, args.fixture, "stories260K fixture")
        check_hanul_gguf(args.tool, tmp)
        check_python_gguf(args.tool, tmp)
        check_safetensors(args.tool, tmp)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print(f"formats interop: all {n_checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
