#!/usr/bin/env python3
"""Makes the golden safetensors files in tests/golden/safetensors/ with the reference writer.

The C++ tests read these files back (names, dtypes, shapes, offsets) and check that
dmem::write_safetensors, given the same tensors, writes byte-identical files.

    pip install safetensors numpy ml_dtypes
    python3 scripts/golden/safetensors.py

Made with safetensors 0.8.0, numpy 2.4.6, ml_dtypes 0.6.0. The Rust writer keeps
`__metadata__` in a hash map, so files with more than one metadata key have no stable key order;
only multi_meta.safetensors has several keys and its test compares parsed content instead.
"""
import ctypes
import os
import struct
import sys

# This file is named like the package it uses: keep its own folder off the import path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden",
                   "safetensors")


def mixed():
    """The dtypes a diffusion checkpoint holds, a scalar, a zero-size tensor and metadata."""
    tensors = {
        "model.embed.weight": np.array([[1.0, -2.0, 0.5], [3.25, -0.125, 100.0]],
                                       dtype=ml_dtypes.bfloat16),
        "model.fp8.weight": np.array([0.5, -1.0, 448.0, 0.015625], dtype=ml_dtypes.float8_e4m3fn),
        "model.norm.weight": np.array([1.0, 0.5, -65504.0], dtype=np.float16),
        "position_ids": np.arange(4, dtype=np.int64).reshape(1, 4),
        "scale": np.array(0.25, dtype=np.float32),
        "empty.bias": np.zeros((0, 4), dtype=np.float32),
        "mask": np.array([True, False, True], dtype=np.bool_),
    }
    save_file(tensors, os.path.join(OUT, "mixed.safetensors"), metadata={"format": "pt"})


def all_dtypes():
    """One tensor per dtype the Python binding accepts, built from raw bytes, so the writer's
    dtype sort order is pinned for every dtype (F6_* have no Python spelling)."""
    specs = [  # (name, binding dtype, shape, bytes)
        ("z.bool", "bool", [2], 2), ("y.f4", "float4_e2m1fn_x2", [2, 1], 2),
        ("x.u8", "uint8", [3], 3), ("w.i8", "int8", [3], 3),
        ("v.f8_e5m2", "float8_e5m2", [2], 2), ("u.f8_e4m3", "float8_e4m3fn", [2], 2),
        ("t.f8_e8m0", "float8_e8m0fnu", [2], 2), ("s.f8_e4m3fnuz", "float8_e4m3fnuz", [2], 2),
        ("r.f8_e5m2fnuz", "float8_e5m2fnuz", [2], 2), ("q.i16", "int16", [2], 4),
        ("p.u16", "uint16", [2], 4), ("o.f16", "float16", [2], 4), ("n.bf16", "bfloat16", [2], 4),
        ("m.i32", "int32", [1], 4), ("l.u32", "uint32", [1], 4), ("k.f32", "float32", [2], 8),
        ("b.f32", "float32", [1, 1], 4), ("j.c64", "complex64", [1], 8), ("i.f64", "float64", [1], 8),
        ("h.i64", "int64", [1], 8), ("g.u64", "uint64", [1], 8),
    ]
    keep = []
    d = {}
    seed = 1
    for name, dtype, shape, nbytes in specs:
        raw = bytes((seed + 37 * i) & 0xFF for i in range(nbytes))
        seed += 11
        buf = ctypes.create_string_buffer(raw, nbytes)
        keep.append(buf)
        d[name] = safetensors.TensorSpec(dtype=dtype, shape=shape, data_ptr=ctypes.addressof(buf),
                                         data_len=nbytes)
    # F4: the binding doubles the last dim of the packed storage shape: [2, 1] -> header [2, 2].
    safetensors.serialize_file(d, os.path.join(OUT, "all_dtypes.safetensors"), metadata=None)


def escapes():
    """JSON string escaping of names and metadata (quote, backslash, control chars, non-ASCII)."""
    tensors = {"na\u00efve/weight \u2713": np.array([7, 8, 9], dtype=np.uint8)}
    note = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f e\u0301 \u2713'
    save_file(tensors, os.path.join(OUT, "escapes.safetensors"), metadata={"note": note})


def empty():
    """FORMATS.md 1.4 test_empty: 08 00.. 00 7B 7D and six spaces."""
    save_file({}, os.path.join(OUT, "empty.safetensors"))


def multi_meta():
    """Several metadata keys (hash-map order in the reference) and two tensors of one dtype."""
    tensors = {"b": np.array([1.5, 2.5], dtype=np.float32), "a": np.array([3.5], dtype=np.float32)}
    save_file(tensors, os.path.join(OUT, "multi_meta.safetensors"),
              metadata={"format": "pt", "producer": "dmem golden", "license": "apache-2.0"})


def main():
    os.makedirs(OUT, exist_ok=True)
    for make in (mixed, all_dtypes, escapes, empty, multi_meta):
        make()
    for name in sorted(os.listdir(OUT)):
        path = os.path.join(OUT, name)
        os.chmod(path, 0o644)  # the package writes 0600
        with open(path, "rb") as f:
            blob = f.read()
        n = struct.unpack("<Q", blob[:8])[0]
        print(f"{name}: {len(blob)} bytes, header {n}")
        print("  " + blob[8:8 + n].decode("utf-8"))


if __name__ == "__main__":
    main()
