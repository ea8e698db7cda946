#!/usr/bin/env python3
"""Makes the golden GGUF files in tests/golden/gguf/ with gguf-py (llama.cpp's reference package).

Writes a few tiny files with GGUFWriter and gguf_reader.json: what GGUFReader reports for each
file (metadata keys, types and values in file order; tensor names, gguf-py shapes (ne order),
type ids, absolute data offsets, byte sizes). The C++ tests check that dmem::read_gguf agrees and
that dmem::write_gguf, given the same content, writes byte-identical files.

    pip install gguf numpy
    python3 scripts/golden/gguf.py

It also refreshes the fuzzing seeds in tests/fuzz/corpus/gguf/: copies of the golden files and
a few malformed files (the exploit shapes of FORMATS.md §2.7).

Made with gguf 0.19.0, numpy 2.4.6.
"""
import json
import os
import shutil
import struct
import sys

# This file is named like the package it uses: keep its own folder off the import path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402
from gguf import GGUFReader, GGUFValueType as V, GGUFWriter, GGMLQuantizationType as T  # noqa: E402
from gguf import GGML_QUANT_SIZES, quants  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "gguf")
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fuzz", "corpus",
                      "gguf")
rng = np.random.default_rng(11)


def raw_blocks(qtype, rows, cols):
    """Random bytes of a block type with finite fp16 scales: enough for header tests."""
    block, size = GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows, cols // block * size), dtype=np.uint8)
    # Q4_K: d and dmin (fp16) lead each block; make them small finite halves.
    if qtype == T.Q4_K:
        blocks = data.reshape(-1, size)
        blocks[:, 0:4] = np.array([0.5, 0.25], dtype=np.float16).view(np.uint8)
    return data


def write(name, build, alignment=None):
    path = os.path.join(OUT, name)
    w = GGUFWriter(path, arch="dmemtest")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def build_meta(w):
    # One key per scalar type, then arrays of every scalar type, strings and bools.
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "hello, gguf ✓")
    w.add_uint64("test.u64", 18446744073709551615)
    w.add_int64("test.i64", -9223372036854775808)
    w.add_float64("test.f64", -2.5e-300)
    arrays = [
        ("test.arr.u8", V.UINT8, [0, 1, 255]),
        ("test.arr.i8", V.INT8, [-128, 0, 127]),
        ("test.arr.u16", V.UINT16, [0, 65535]),
        ("test.arr.i16", V.INT16, [-32768, 32767]),
        ("test.arr.u32", V.UINT32, [1, 4294967295]),
        ("test.arr.i32", V.INT32, [-2147483648, 7]),
        ("test.arr.f32", V.FLOAT32, [1.5, -0.1, 3.0e38]),
        ("test.arr.bool", V.BOOL, [True, False, True]),
        ("test.arr.string", V.STRING, ["a", "", "tokens ünïcode"]),
        ("test.arr.u64", V.UINT64, [0, 18446744073709551615]),
        ("test.arr.i64", V.INT64, [-9223372036854775808, 9223372036854775807]),
        ("test.arr.f64", V.FLOAT64, [1e300, -0.0, 0.125]),
    ]
    for key, sub, values in arrays:
        w.add_key_value(key, values, V.ARRAY, sub_type=sub)
    w.add_tensor("weight", np.arange(6, dtype=np.float32).reshape(2, 3))


def build_tensors(w):
    w.add_string("general.name", "tensor zoo")
    w.add_tensor("f32.2d", rng.standard_normal((2, 3)).astype(np.float32))
    w.add_tensor("f16.4d", rng.standard_normal((1, 2, 3, 4)).astype(np.float16))
    w.add_tensor("f32.1d", rng.standard_normal(5).astype(np.float32))
    w.add_tensor("f32.3d", rng.standard_normal((2, 3, 4)).astype(np.float32))
    q8 = quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), T.Q8_0)
    w.add_tensor("blk.0.q8_0", q8, raw_dtype=T.Q8_0)
    q4 = quants.quantize(rng.standard_normal((3, 32)).astype(np.float32), T.Q4_0)
    w.add_tensor("blk.0.q4_0", q4, raw_dtype=T.Q4_0)
    w.add_tensor("blk.1.q4_k", raw_blocks(T.Q4_K, 2, 256), raw_dtype=T.Q4_K)
    w.add_tensor("i32", np.array([1, -2, 3], dtype=np.int32))
    w.add_tensor("i8", np.array([[1, -2], [3, 4]], dtype=np.int8))


def build_align(w):
    w.add_uint32("test.value", 7)
    w.add_tensor("a", np.arange(3, dtype=np.float32))
    w.add_tensor("b", np.arange(5, dtype=np.float16))
    w.add_tensor("c", quants.quantize(np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 32), T.Q8_0),
                 raw_dtype=T.Q8_0)


def build_empty(w):
    w.add_string("general.name", "no tensors")


def plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe(path):
    r = GGUFReader(path)
    meta = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue  # gguf-py's pseudo fields for the header
        entry = {"key": key, "type": int(field.types[0])}
        if field.types[0] == V.ARRAY:
            entry["elem_type"] = int(field.types[-1])
        value = field.contents()
        entry["value"] = [plain(v) for v in value] if isinstance(value, list) else plain(value)
        meta.append(entry)
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "shape": [int(d) for d in t.shape],
            "type": int(t.tensor_type),
            "type_name": t.tensor_type.name,
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "data_offset": int(t.data_offset),
        })
    return {
        "file_size": os.path.getsize(path),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": meta,
        "tensors": tensors,
    }


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def malformed_seeds():
    """Small hand-made bad files; each breaks one rule the reader enforces."""
    hdr = lambda nt, nkv: b"GGUF" + struct.pack("<IQQ", 3, nt, nkv)  # noqa: E731
    info = lambda name, ne, t, off: (gguf_str(name) + struct.pack("<I", len(ne)) +  # noqa: E731
                                     b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", t, off))
    pad = lambda b, a=32: b + bytes(-len(b) % a)  # noqa: E731
    return {
        "bad_talos_n_tensors.gguf": b"GGUF" + struct.pack("<I", 3) + b"\x1d" * 8 + bytes(8) + bytes(40),
        "bad_array_2p63.gguf": hdr(0, 1) + gguf_str("a") + struct.pack("<IIQ", 9, 4, 1 << 63),
        "bad_string_2p63.gguf": hdr(0, 1) + struct.pack("<Q", 1 << 63) + bytes(16),
        "bad_nested_array.gguf": hdr(0, 1) + gguf_str("k") + struct.pack("<IIQIQI", 9, 9, 1, 4, 1, 0),
        "bad_alignment_u64.gguf": hdr(0, 1) + gguf_str("general.alignment") + struct.pack("<IQ", 10, 32),
        "bad_ne_overflow.gguf": pad(hdr(2, 0) + info("big", [4096, (1 << 42) + 1], 0, 0) +
                                    info("next", [8], 0, 32)) + bytes(64),
        "bad_removed_type.gguf": pad(hdr(1, 0) + info("t", [32], 4, 0)) + bytes(32),
        "bad_pad_overflow.gguf": pad(hdr(2, 0) + info("a", [1 << 61], 0, 0) + info("b", [1 << 61], 0, 1 << 63)),
        "bad_dup_tensor.gguf": pad(hdr(2, 0) + info("w", [8], 0, 0) + info("w", [8], 0, 32)) + bytes(64),
    }


def write_corpus():
    os.makedirs(CORPUS, exist_ok=True)
    for name in ("meta.gguf", "tensors.gguf", "align64.gguf", "no_tensors.gguf"):
        shutil.copyfile(os.path.join(OUT, name), os.path.join(CORPUS, "valid_" + name))
    for name, data in malformed_seeds().items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "meta.gguf": write("meta.gguf", build_meta),
        "tensors.gguf": write("tensors.gguf", build_tensors),
        "align64.gguf": write("align64.gguf", build_align, alignment=64),
        "no_tensors.gguf": write("no_tensors.gguf", build_empty),
    }
    report = {name: describe(path) for name, path in files.items()}
    with open(os.path.join(OUT, "gguf_reader.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(files)} files to {os.path.normpath(OUT)} ({total} bytes in all)")
    write_corpus()
    print(f"wrote fuzzing seeds to {os.path.normpath(CORPUS)}")


if __name__ == "__main__":
    main()
