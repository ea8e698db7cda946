#!/usr/bin/env python3
"""Golden pre-quantized checkpoints for `dmem convert` (tests/golden/convert/).

input.safetensors  a small transformer-like state dict in bf16: linear layers with biases
                   (in-dims 96 and 70, so some rows are not whole 64-blocks), a 1-D norm weight
nf4_dq.safetensors the same layers as bnb.nn.Linear4bit(quant_type="nf4", compress_statistics=True,
                   blocksize=64), state_dict() as bitsandbytes serialises it
fp4.safetensors    Linear4bit(quant_type="fp4", compress_statistics=False)
int8.safetensors   bnb.nn.Linear8bitLt(has_fp16_weights=False, threshold=6.0)
Norm weights are copied as they are. The C++ test converts input.safetensors with dmem and
compares every key, dtype, shape and byte with these files.
Made with bitsandbytes 0.50.2 and torch 2.15.0 on the CPU.
Run: pip install torch bitsandbytes safetensors && python3 -P scripts/golden/convert.py
(-P: scripts/golden/safetensors.py would otherwise shadow the safetensors package)
"""
import pathlib

import torch
import bitsandbytes as bnb
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "convert"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(11)

# name -> (out, in); all with a bias.
LINEARS = {
    "transformer_blocks.0.attn.to_q": (64, 96),
    "transformer_blocks.0.attn.to_k": (64, 96),
    "transformer_blocks.0.ff.net.2": (96, 70),
    "transformer_blocks.1.attn.to_q": (64, 96),
    "proj_out": (24, 64),
}
inputs = {}
for name, (o, i) in LINEARS.items():
    inputs[f"{name}.weight"] = (torch.randn(o, i) * 0.05).to(torch.bfloat16)
    inputs[f"{name}.bias"] = (torch.randn(o) * 0.01).to(torch.bfloat16)
inputs["transformer_blocks.0.norm1.weight"] = (1 + torch.randn(96) * 0.01).to(torch.bfloat16)
save_file(inputs, str(out / "input.safetensors"), metadata={"format": "pt"})


def quantized_state(make):
    sd = {"transformer_blocks.0.norm1.weight": inputs["transformer_blocks.0.norm1.weight"]}
    for name, (o, i) in LINEARS.items():
        lin = make(name, o, i)
        lin.bias = torch.nn.Parameter(inputs[f"{name}.bias"].clone(), requires_grad=False)
        lin = lin.to("cpu")  # Params4bit / Int8Params quantize when moved to a device
        for k, v in lin.state_dict().items():
            sd[f"{name}.{k}"] = v.detach().contiguous()
    return sd


def four_bit(qt, dq):
    def make(name, o, i):
        lin = bnb.nn.Linear4bit(i, o, bias=True, compute_dtype=torch.bfloat16,
                                compress_statistics=dq, quant_type=qt)
        lin.weight = bnb.nn.Params4bit(inputs[f"{name}.weight"].clone(), requires_grad=False,
                                       compress_statistics=dq, quant_type=qt, blocksize=64)
        return lin
    return make


def int8(name, o, i):
    lin = bnb.nn.Linear8bitLt(i, o, bias=True, has_fp16_weights=False, threshold=6.0)
    lin.weight = bnb.nn.Int8Params(inputs[f"{name}.weight"].clone(), requires_grad=False,
                                   has_fp16_weights=False)
    return lin


meta = {"format": "pt", "torch": torch.__version__, "bitsandbytes": bnb.__version__}
for fname, make in [("nf4_dq", four_bit("nf4", True)), ("fp4", four_bit("fp4", False)),
                    ("int8", int8)]:
    sd = quantized_state(make)
    save_file(sd, str(out / f"{fname}.safetensors"), metadata=meta)
    print(fname)
    for k in sorted(sd):
        print("  ", k, sd[k].dtype, tuple(sd[k].shape))
