#!/usr/bin/env python3
"""Golden LLM.int8 weight quantization for the bnb_int8 plugin, made by bitsandbytes itself.

tests/golden/bnb_int8/rows.bin: u32 LE rows, u32 LE cols, the f32 weight, then what
bitsandbytes makes of it on the CPU: CB int8 [rows, cols] and SCB f32 [rows] from
Linear8bitLt(has_fp16_weights=False) moved to the CPU (Int8Params._quantize: the weight cast to
f16, then int8_vectorwise_quant), then int8_vectorwise_dequant(CB, SCB) as f32 [rows, cols].
tests/golden/bnb_int8/linear8bit.safetensors: that layer's state_dict under the prefix "proj."
(weight int8, SCB f32, weight_format u8 scalar, bias f32), as bitsandbytes serialises it.
Made with bitsandbytes 0.50.2 and torch 2.15.0 (CPU).
Run: pip install bitsandbytes torch safetensors numpy && python3 -P scripts/golden/bnb_int8.py
(-P: scripts/golden/safetensors.py would otherwise shadow the safetensors package)
"""
import pathlib
import numpy as np
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[2] / "tests/golden/bnb_int8"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(8)
ROWS, COLS = 24, 64
w = (rng.standard_normal((ROWS, COLS)) * rng.uniform(0.001, 3, (ROWS, 1))).astype(np.float32)
w[1] = np.linspace(-1, 1, COLS)                  # evenly spaced
w[2] = np.round(w[2] * 8) / 8                    # a coarse grid: ties after scaling
w[3] = 0.0; w[3, 7] = -2.5                       # one value (negative absmax)
w[4] = 1e-3 * np.arange(COLS) - 0.03             # small values, f16 rounding matters
w[5] *= 2000.0                                   # large values
w[6] = 127.0 / 2 ** np.arange(COLS) ** 0.3       # many exact-ish halves

lin = bnb.nn.Linear8bitLt(COLS, ROWS, bias=True, has_fp16_weights=False, threshold=6.0)
lin.weight = bnb.nn.Int8Params(torch.from_numpy(w).half(), requires_grad=False,
                               has_fp16_weights=False)
lin.bias = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(ROWS).astype(np.float32)))
lin = lin.to("cpu")
CB, SCB = lin.weight.data, lin.weight.SCB
assert CB.dtype == torch.int8 and SCB.dtype == torch.float32
deq = F.int8_vectorwise_dequant(CB, SCB).float()
(out / "rows.bin").write_bytes(np.array([ROWS, COLS], dtype="<u4").tobytes() + w.tobytes()
                               + CB.numpy().tobytes() + SCB.numpy().tobytes()
                               + deq.numpy().tobytes())
sd = {"proj." + k: v.contiguous() for k, v in lin.state_dict().items()}
save_file(sd, str(out / "linear8bit.safetensors"))
print({k: (str(v.dtype), tuple(v.shape)) for k, v in sd.items()})
