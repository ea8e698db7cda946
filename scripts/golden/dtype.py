#!/usr/bin/env python3
"""Golden conversions f32 -> f16 / bf16 / fp8 e4m3fn / fp8 e5m2 made with numpy and ml_dtypes.

Writes tests/golden/dtype/f32_casts.bin: records of
  f32 bits (u32 LE) | f16 (u16 LE) | bf16 (u16 LE) | e4m3fn (u8) | e5m2 (u8)
Inputs: special values, every decision boundary (midpoints between neighbouring codes of each narrow
format, and one ulp either side), and random values over a wide exponent range.
ml_dtypes rounds to nearest even and, like PyTorch's software cast, turns e4m3fn overflow into NaN.
Run: pip install numpy ml_dtypes && python3 scripts/golden/dtype.py
"""
import pathlib
import numpy as np
import ml_dtypes as md

rng = np.random.default_rng(20261123)
vals = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 448.0, 464.0, 464.01, 480.0, 500.0,
        -500.0, 57344.0, 61439.0, 61440.0, 65504.0, 65520.0, 65536.0, 2.0**-10, 0.75 * 2.0**-9,
        2.0**-9, 2.0**-16, 2.0**-17, 2.0**-24, 2.0**-25, 2.0**-26, 3.4e38, 1e-45]


def boundaries(narrow, width):
    codes = np.arange(2**width, dtype=np.uint64).astype(np.uint8 if width == 8 else np.uint16)
    x = codes.view(narrow).astype(np.float32)
    x = np.sort(x[np.isfinite(x)])
    x = np.unique(x)
    mids = (x[:-1].astype(np.float64) + x[1:].astype(np.float64)) / 2
    mids = mids.astype(np.float32)
    out = [mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf)), x]
    return np.concatenate(out)


parts = [np.array(vals, dtype=np.float32),
         boundaries(md.float8_e4m3fn, 8), boundaries(md.float8_e5m2, 8),
         boundaries(np.float16, 16)[::37]]
mant = rng.uniform(1.0, 2.0, 4000)
exp = rng.integers(-30, 20, 4000)
sign = rng.choice([-1.0, 1.0], 4000)
parts.append((sign * mant * np.exp2(exp)).astype(np.float32))
x = np.concatenate(parts).astype(np.float32)

with np.errstate(over="ignore", invalid="ignore"):
    f16 = x.astype(np.float16).view(np.uint16)
    bf16 = x.astype(md.bfloat16).view(np.uint16)
    e4m3 = x.astype(md.float8_e4m3fn).view(np.uint8)
    e5m2 = x.astype(md.float8_e5m2).view(np.uint8)

rec = np.zeros(len(x), dtype=[("f32", "<u4"), ("f16", "<u2"), ("bf16", "<u2"), ("e4m3", "u1"), ("e5m2", "u1")])
rec["f32"], rec["f16"], rec["bf16"], rec["e4m3"], rec["e5m2"] = x.view(np.uint32), f16, bf16, e4m3, e5m2
out = pathlib.Path(__file__).resolve().parents[2] / "tests/golden/dtype/f32_casts.bin"
out.write_bytes(rec.tobytes())
print(f"{out}: {len(x)} records, {out.stat().st_size} bytes (numpy {np.__version__}, ml_dtypes {md.__version__})")
