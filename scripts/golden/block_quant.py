#!/usr/bin/env python3
"""Golden GGML block (de)quantization made with gguf-py (llama.cpp's reference numpy code).

For each type writes tests/golden/block_quant/<type>.dq: random raw blocks (with finite fp16
scales) followed by gguf-py's f32 dequantization. For q4_0 q4_1 q5_0 q5_1 q8_0 also <type>.q:
random f32 input followed by gguf-py's quantized blocks.
File layout: u32 LE count of values, then the input bytes, then the output bytes.
Run: pip install numpy gguf && python3 scripts/golden/block_quant.py
"""
import pathlib
import numpy as np
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES, quants

out = pathlib.Path(__file__).resolve().parents[2] / "tests/golden/block_quant"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)

# (type, byte offsets of fp16 fields inside a block)
DEQ = {
    "q4_0": (T.Q4_0, [0]), "q4_1": (T.Q4_1, [0, 2]), "q5_0": (T.Q5_0, [0]),
    "q5_1": (T.Q5_1, [0, 2]), "q8_0": (T.Q8_0, [0]), "q2_k": (T.Q2_K, [80, 82]),
    "q3_k": (T.Q3_K, [108]), "q4_k": (T.Q4_K, [0, 2]), "q5_k": (T.Q5_K, [0, 2]),
    "q6_k": (T.Q6_K, [208]), "iq4_nl": (T.IQ4_NL, [0]), "mxfp4": (T.MXFP4, []),
}
NBLOCKS = 24

for name, (qt, halves) in DEQ.items():
    bs, ts = GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(NBLOCKS, ts), dtype=np.uint8)
    for off in halves:
        h = (rng.standard_normal(NBLOCKS) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(NBLOCKS, 2)
    if name == "mxfp4":
        raw[:, 0] = rng.integers(100, 150, NBLOCKS)  # sane exponents
    y = quants.dequantize(raw.reshape(-1), qt).astype(np.float32).reshape(-1)
    assert np.all(np.isfinite(y)), name
    n = NBLOCKS * bs
    (out / f"{name}.dq").write_bytes(np.uint32(n).tobytes() + raw.tobytes() + y.tobytes())

QUANT = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0}
for name, qt in QUANT.items():
    bs, ts = GGML_QUANT_SIZES[qt]
    x = (rng.standard_normal((NBLOCKS, bs)) * rng.uniform(0.001, 10, (NBLOCKS, 1))).astype(np.float32)
    x[0] = 0.0                          # all-zero block: scale 0
    x[1] = np.linspace(-1, 1, bs)       # evenly spaced
    x[2] = 0.0; x[2, 5] = -3.0          # a single negative outlier
    x[3] = np.round(x[3] * 4) / 4       # values on a coarse grid (ties)
    q = quants.quantize(x, qt).reshape(-1)
    (out / f"{name}.q").write_bytes(np.uint32(x.size).tobytes() + x.tobytes() + q.tobytes())
print("wrote", sorted(p.name for p in out.iterdir()))

# NaN-payload, infinite and subnormal f16 scales: <type>_nan.dq (same layout as .dq). A NaN scale
# keeps its payload through dequantization (the f16 -> f32 conversion keeps it; the product
# quiets it). A separate generator, so the files above do not change.
rng = np.random.default_rng(11)
SPECIAL = np.array([0x7C01, 0xFD55, 0x7E00, 0x7FFF, 0xFE3A, 0x7C00, 0xFC00, 0x0001, 0x83FF,
                    0x3C00], dtype=np.uint16)
for name in ("q8_0", "q4_0", "q4_k", "q5_k", "q6_k"):
    qt, halves = DEQ[name]
    bs, ts = GGML_QUANT_SIZES[qt]
    nb = 2 * len(SPECIAL)
    raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    for k, off in enumerate(halves):
        h = np.concatenate([SPECIAL, np.roll(SPECIAL, k + 3)]) if k else np.concatenate([SPECIAL, SPECIAL[::-1]])
        raw[:, off:off + 2] = h.view(np.uint8).reshape(nb, 2)
    with np.errstate(invalid="ignore", over="ignore"):
        y = quants.dequantize(raw.reshape(-1), qt).astype(np.float32).reshape(-1)
    assert np.any(np.isnan(y)), name
    (out / f"{name}_nan.dq").write_bytes(np.uint32(nb * bs).tobytes() + raw.tobytes() + y.tobytes())
print("wrote NaN-scale goldens")
