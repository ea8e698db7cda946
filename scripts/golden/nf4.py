#!/usr/bin/env python3
"""Golden NF4 / FP4 quantization made with bitsandbytes on the CPU (tests/golden/nf4/).

quantize.safetensors: for each case <c> (parameters in the file's __metadata__ as
"quant_type=..,blocksize=..,double_quant=.."):
  <c>.input        the weight (f32, bf16 or f16), 2-D
  <c>.packed       u8 [(n+1)//2] codes, first element in the high nibble (bnb quantize_4bit)
  <c>.absmax       f32 [blocks]                 (double_quant=false)
  <c>.qabsmax      u8 [blocks], <c>.nested_absmax f32 [ceil(blocks/256)], <c>.offset f32 [1],
  <c>.code2        f32 [256] the 8-bit map bnb used          (double_quant=true)
  <c>.deq_f32/.deq_bf16/.deq_f16   bnb's dequantization of that state into each dtype (portable
                   backend; see reference_dequantize)
linear4bit.safetensors: the state_dict of bnb.nn.Linear4bit layers (nf4 + double quant, fp4
without), exactly as bnb serialises them, plus expect.<layer>.f32 / .bf16 = their dequantization.

Run: pip install torch bitsandbytes safetensors numpy && python3 scripts/golden/nf4.py
"""
import pathlib
import sys

# scripts/golden/safetensors.py would shadow the safetensors package.
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import numpy as np
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
from safetensors.torch import save_file
from bitsandbytes.backends.default import ops as default_ops

out = pathlib.Path(__file__).resolve().parents[2] / "tests/golden/nf4"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(20261128)
DT = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def weight(shape, dtype, special=False):
    w = torch.randn(shape, dtype=torch.float32) * 0.05
    if special:
        flat = w.view(-1)
        # Block 0: absmax exactly 1 and every NF4 / FP4 midpoint as a value, so ties are tested.
        nf4b, _ = bnb.backends.default.ops._get_4bit_quantize_bounds("nf4", torch.device("cpu"))
        fp4b, _ = bnb.backends.default.ops._get_4bit_quantize_bounds("fp4", torch.device("cpu"))
        vals = torch.cat([torch.tensor([1.0, -1.0, 0.0, -0.0]), nf4b, fp4b])
        flat[: vals.numel()] = vals
        flat[64:128] = 0.0  # an all-zero block
        flat[128:192] = torch.linspace(-3e-3, 3e-3, 64)  # tiny values around the FP4 subnormal
    return w.to(DT[dtype])


def reference_dequantize(packed, st, dtype):
    """bnb's dequantize_4bit through its portable backend (the semantics of its CUDA kernel).

    bnb 0.50.2's native CPU kernel (taken on AVX-512 machines for an even last dimension) looks
    up absmax per row, which is wrong when a row is not a whole number of blocks (e.g. 96 columns
    with blocksize 64); the portable path indexes blocks over the flattened tensor, as the format
    defines. Both are compared where they must agree."""
    absmax = st.absmax
    if st.nested:
        absmax = F.dequantize_blockwise(st.absmax, st.state2) + st.offset
    code = F.get_4bit_type(st.quant_type, device="cpu")
    fn = default_ops._dequantize_4bit_compute
    fn = getattr(fn, "__wrapped__", fn)  # not through torch.compile
    out = fn(packed.reshape(-1), absmax.float(), code, st.blocksize, st.shape, dtype).contiguous()
    if st.shape[-1] % st.blocksize == 0:
        st.dtype = dtype
        assert torch.equal(out.view(torch.uint8), F.dequantize_4bit(packed, st).view(torch.uint8))
    return out


cases = [
    ("nf4_f32_bs64", "nf4", 64, False, (48, 96), "f32", True),
    ("fp4_f32_bs64", "fp4", 64, False, (48, 96), "f32", True),
    ("nf4_bf16_bs64_dq", "nf4", 64, True, (150, 128), "bf16", False),
    ("fp4_f16_bs128_dq", "fp4", 128, True, (40, 100), "f16", False),
    ("nf4_f32_bs32_odd", "nf4", 32, False, (7, 9), "f32", False),
    ("fp4_f32_bs64_odd_dq", "fp4", 64, True, (5, 13), "f32", False),
    ("nf4_f16_bs4096", "nf4", 4096, False, (64, 100), "f16", False),
    ("nf4_f32_zero_tail", "nf4", 64, False, (3, 10), "f32", False),
]
tensors, meta = {}, {}
for name, qt, bs, dq, shape, dt, special in cases:
    w = weight(shape, dt, special)
    if name == "nf4_f32_zero_tail":
        w.zero_()
    packed, st = F.quantize_4bit(w, blocksize=bs, quant_type=qt, compress_statistics=dq)
    meta[name] = f"quant_type={qt},blocksize={bs},double_quant={'true' if dq else 'false'}"
    tensors[f"{name}.input"] = w.contiguous()
    tensors[f"{name}.packed"] = packed.reshape(-1).contiguous()
    if dq:
        tensors[f"{name}.qabsmax"] = st.absmax.contiguous()
        tensors[f"{name}.nested_absmax"] = st.state2.absmax.contiguous()
        tensors[f"{name}.offset"] = st.offset.reshape(1).float().contiguous()
        tensors[f"{name}.code2"] = st.state2.code.clone()
    else:
        tensors[f"{name}.absmax"] = st.absmax.contiguous()
    for od, tdt in DT.items():
        tensors[f"{name}.deq_{od}"] = reference_dequantize(packed, st, tdt)
save_file(tensors, str(out / "quantize.safetensors"), metadata=meta)

# Linear4bit serialisation (Params4bit quantizes when moved to a device, the CPU included).
sd = {}
for lname, qt, dq, (o, i) in [("nf4_dq", "nf4", True, (48, 96)), ("fp4", "fp4", False, (24, 70))]:
    lin = bnb.nn.Linear4bit(i, o, bias=True, compute_dtype=torch.bfloat16, compress_statistics=dq,
                            quant_type=qt)
    w = (torch.randn(o, i) * 0.05).to(torch.bfloat16)
    lin.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=dq, quant_type=qt,
                                   blocksize=64)
    lin.bias = torch.nn.Parameter(torch.randn(o).to(torch.bfloat16), requires_grad=False)
    lin = lin.to("cpu")
    for k, v in lin.state_dict().items():
        sd[f"{lname}.{k}"] = v.detach().contiguous()
    qs = lin.weight.quant_state
    sd[f"expect.{lname}.bf16"] = reference_dequantize(lin.weight.data, qs, torch.bfloat16)
    sd[f"expect.{lname}.f32"] = reference_dequantize(lin.weight.data, qs, torch.float32)
save_file(sd, str(out / "linear4bit.safetensors"),
          metadata={"torch": torch.__version__, "bitsandbytes": bnb.__version__})
print("torch", torch.__version__, "bitsandbytes", bnb.__version__)
for k in sorted(sd):
    print(k, sd[k].dtype, tuple(sd[k].shape))
