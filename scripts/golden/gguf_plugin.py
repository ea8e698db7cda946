#!/usr/bin/env python3
"""Golden GGML quantization for the gguf plugin, made by ggml itself.

For q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k writes tests/golden/gguf_plugin/<type>.q:
u32 LE row count, u32 LE row length, the f32 input (rows x row length), then ggml's packed
blocks from ggml_quantize_chunk(type, ..., imatrix=NULL), i.e. quantize_row_<type>_ref.

ggml: the ggml sources vendored in the llama-cpp-python 0.3.36 sdist from PyPI (ggml 0.25.3,
llama.cpp commit 0c1e5709), libggml-base built for baseline x86-64 (no FMA, -ffp-contract=off,
so no multiply-add is fused and the C code's rounding is what you get):
  pip download llama-cpp-python==0.3.36 --no-deps --no-binary :all:
  tar xzf llama_cpp_python-0.3.36.tar.gz; cd llama_cpp_python-0.3.36/vendor/llama.cpp/ggml
  touch ggml.pc.in   # the sdist leaves it out
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_CPU=OFF \
    -DBUILD_SHARED_LIBS=ON -DCMAKE_C_FLAGS=-ffp-contract=off -DCMAKE_CXX_FLAGS=-ffp-contract=off
  cmake --build build --target ggml-base
Run: GGML_BASE=/path/to/build/src/libggml-base.so python3 scripts/golden/gguf_plugin.py (numpy)
"""
import ctypes
import os
import pathlib
import numpy as np

lib = ctypes.CDLL(os.environ["GGML_BASE"])
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                    ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
lib.ggml_row_size.restype = ctypes.c_size_t
lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

TYPES = {"q8_0": 8, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q4_k": 12, "q5_k": 13, "q6_k": 14}
ROWS, COLS = 16, 512  # two 256-blocks (sixteen 32-blocks) per row

out = pathlib.Path(__file__).resolve().parents[2] / "tests/golden/gguf_plugin"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(2024)
x = (rng.standard_normal((ROWS, COLS)) * rng.uniform(0.001, 10, (ROWS, 1))).astype(np.float32)
x[0] = 0.0                                    # all zero: scales 0
x[1] = np.linspace(-1, 1, COLS)               # evenly spaced
x[2] = 0.0; x[2, 5] = -3.0; x[2, 300] = 7.0   # lone outliers
x[3] = np.round(x[3] * 4) / 4                 # a coarse grid (ties)
x[4] = np.abs(x[4]) + 0.5                     # all positive: the minimum is clamped to 0
x[5] = 1.25                                   # constant
x[6] *= 1e-6                                  # tiny values (f16 scales near subnormal)
x[7] *= 3000.0                                # large values
x[8, ::2] = 0.0                               # half zeros
x[9] = rng.standard_t(2, COLS).astype(np.float32)  # heavy tails

for name, t in TYPES.items():
    size = lib.ggml_row_size(t, COLS) * ROWS
    dst = np.zeros(size, dtype=np.uint8)
    src = np.ascontiguousarray(x)
    n = lib.ggml_quantize_chunk(t, src.ctypes.data, dst.ctypes.data, 0, ROWS, COLS, None)
    assert n == size, (name, n, size)
    (out / f"{name}.q").write_bytes(np.array([ROWS, COLS], dtype="<u4").tobytes() + src.tobytes()
                                    + dst.tobytes())
print("wrote", sorted(p.name for p in out.iterdir()))
