#!/usr/bin/env python3
"""Golden casts made with PyTorch's CPU casts (Tensor.to), NaN bit patterns included.

Writes into tests/golden/dtype/:
  torch_widen_f16.bin   f32 bits (u32 LE) of every f16 code 0..65535, in code order
  torch_widen_bf16.bin  records code (u32 LE) | f32 bits (u32 LE): every bf16 code whose exponent is
                        all zeros or all ones (zeros, subnormals, inf, NaN payloads) and every 17th code
  torch_widen_e4m3.bin  f32 bits (u32 LE) of the 256 float8_e4m3fn codes
  torch_widen_e5m2.bin  f32 bits (u32 LE) of the 256 float8_e5m2 codes
  torch_narrow.bin      records f32 bits (u32 LE) | f16 (u16 LE) | bf16 (u16 LE) | e4m3fn (u8) | e5m2 (u8)
Narrowing inputs: rounding ties and one ulp either side of every midpoint between neighbouring codes
of each format, subnormal edges, the overflow edges (e4m3fn 448 464 465 480 inf; e5m2 57344 61440
inf), NaNs with payloads (both signs, quiet and signalling), +-0 and random bit patterns.

torch's x86 CPU casts are vectorised (AVX2 / AVX-512): f32 -> bf16 turns every NaN into 0xFFFF
there (its scalar fallback, ATEN_CPU_CAPABILITY=default, gives 0x7FC0); f16 follows F16C, payload
kept and quieted. The script records what the installed torch does and prints its capability.
Run: pip install numpy torch && python3 scripts/golden/dtype_torch.py
"""
import pathlib
import numpy as np
import torch

out = pathlib.Path(__file__).resolve().parents[2] / "tests/golden/dtype"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(20261128)


def widen(codes, torch_dtype, int_dtype):
    t = torch.from_numpy(codes.astype(int_dtype)).view(torch_dtype)
    return t.to(torch.float32).view(torch.int32).numpy().view(np.uint32)


f16_codes = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16)
(out / "torch_widen_f16.bin").write_bytes(widen(f16_codes, torch.float16, np.int16).astype("<u4").tobytes())

all16 = np.arange(65536, dtype=np.uint32)
exp = (all16 >> 7) & 0xFF
bf_codes = all16[(exp == 0) | (exp == 0xFF) | (all16 % 17 == 0)]
bf = widen(bf_codes.astype(np.uint16).view(np.int16), torch.bfloat16, np.int16)
rec = np.zeros(len(bf_codes), dtype=[("code", "<u4"), ("f32", "<u4")])
rec["code"], rec["f32"] = bf_codes, bf
(out / "torch_widen_bf16.bin").write_bytes(rec.tobytes())

b = np.arange(256, dtype=np.uint8)
(out / "torch_widen_e4m3.bin").write_bytes(widen(b, torch.float8_e4m3fn, np.uint8).astype("<u4").tobytes())
(out / "torch_widen_e5m2.bin").write_bytes(widen(b, torch.float8_e5m2, np.uint8).astype("<u4").tobytes())


def f32_bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def midpoints(torch_dtype, int_dtype, codes):
    x = torch.from_numpy(codes.astype(int_dtype)).view(torch_dtype).to(torch.float32).numpy()
    x = np.unique(x[np.isfinite(x)]).astype(np.float64)
    mids = ((x[:-1] + x[1:]) / 2).astype(np.float32)  # exact: one more bit than the narrow format
    up = np.nextafter(mids, np.float32(np.inf))
    down = np.nextafter(mids, np.float32(-np.inf))
    return np.concatenate([f32_bits(v) for v in (x.astype(np.float32), mids, up, down)])


special = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 448.0, 464.0, 465.0, 480.0, 500.0, -464.0,
           -480.0, 57344.0, 61439.0, 61440.0, 65504.0, 65519.0, 65520.0, 65536.0, 3.4e38, -3.4e38,
           2.0**-6, 2.0**-7, 2.0**-9, 2.0**-10, 0.75 * 2.0**-9, 2.0**-14, 2.0**-16, 2.0**-17,
           2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 2.0**-26, 2.0**-126, 2.0**-149]
nans = [0x7F800001, 0x7F800100, 0x7F802000, 0x7FA00000, 0x7FBFFFFF, 0x7FC00000, 0x7FC00001,
        0x7FE00000, 0x7FFFFFFF, 0xFF800001, 0xFFA00000, 0xFFC00000, 0xFFC12345, 0xFFFFFFFF,
        0x7F801FFF, 0x7FBFE000, 0x7FD55555]
parts = [f32_bits(special), np.array(nans, dtype=np.uint32),
         midpoints(torch.float8_e4m3fn, np.uint8, np.arange(256)),
         midpoints(torch.float8_e5m2, np.uint8, np.arange(256)),
         midpoints(torch.float16, np.int16, np.arange(65536).astype(np.uint16).view(np.int16))[::97],
         midpoints(torch.bfloat16, np.int16, np.arange(65536).astype(np.uint16).view(np.int16))[::101],
         rng.integers(0, 2**32, 2000, dtype=np.uint64).astype(np.uint32)]
mant = rng.uniform(1.0, 2.0, 4000)
e = rng.integers(-30, 20, 4000)
s = rng.choice([-1.0, 1.0], 4000)
parts.append(f32_bits(s * mant * np.exp2(e)))
x = np.concatenate(parts).astype(np.uint32)
t = torch.from_numpy(x.view(np.int32).copy()).view(torch.float32)


def narrow(torch_dtype):
    return t.to(torch_dtype)


rec = np.zeros(len(x), dtype=[("f32", "<u4"), ("f16", "<u2"), ("bf16", "<u2"), ("e4m3", "u1"), ("e5m2", "u1")])
rec["f32"] = x
rec["f16"] = narrow(torch.float16).view(torch.int16).numpy().view(np.uint16)
rec["bf16"] = narrow(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
rec["e4m3"] = narrow(torch.float8_e4m3fn).view(torch.uint8).numpy()
rec["e5m2"] = narrow(torch.float8_e5m2).view(torch.uint8).numpy()
(out / "torch_narrow.bin").write_bytes(rec.tobytes())
print(f"torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}): "
      f"{len(x)} narrowing records, {len(bf_codes)} bf16 codes")
