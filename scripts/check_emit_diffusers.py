#!/usr/bin/env python3
"""Runs the diffusers scripts dmem emits against tiny random-weight pipelines (by hand, not CI).

For each catalog pipeline it knows (FLUX.1-dev, Qwen-Image) this script builds a tiny pipeline of
the same classes with random weights in a temporary folder, asks `dmem plan --engine diffusers`
for the plans of several machines, emits every plan (`--emit N`), points each script at the tiny
pipeline (one 64x64 denoising step) and runs it. Any exception fails the check.

Without a CUDA device the scripts run on the CPU, and what needs a GPU is rewritten and reported:
device_map="cuda" and DEVICE become the CPU, use_stream=True becomes False; scripts with
bitsandbytes, GGUF, enable_model_cpu_offload or enable_sequential_cpu_offload are skipped
(bitsandbytes kernels and the two offload hooks need an accelerator; GGUF needs a file).

Set up (CPU torch is enough):
  python3 -m venv /tmp/venv-diffusers
  /tmp/venv-diffusers/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
  /tmp/venv-diffusers/bin/pip install diffusers transformers accelerate
  /tmp/venv-diffusers/bin/python scripts/check_emit_diffusers.py --dmem build/bin/dmem
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

MACHINES = [
    ["--gpu", "rtx5090", "--ram", "60GiB"],
    ["--gpu", "rtx5090", "--vram", "29GiB", "--ram", "12GiB"],
    ["--gpu", "rtx4090", "--ram", "32GiB"],
    ["--vram", "8GiB", "--ram", "16GiB"],
]


def byte_vocab():
    """GPT-2's byte-to-unicode map: every byte is one token of a byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_bpe(folder, extra):
    os.makedirs(folder, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(byte_vocab() + extra)}
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return vocab


def clip_tokenizer(folder):
    from transformers import CLIPTokenizer
    write_bpe(folder, [c + "</w>" for c in byte_vocab()] + ["<|startoftext|>", "<|endoftext|>"])
    return CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                         model_max_length=77)


def build_flux(path):
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel
    torch.manual_seed(0)
    tok = clip_tokenizer(os.path.join(path, "_tok"))
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                        num_hidden_layers=2, vocab_size=len(tok), projection_dim=32,
                                        bos_token_id=len(tok) - 2, eos_token_id=len(tok) - 1))
    t5 = T5EncoderModel(T5Config(d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2,
                                 vocab_size=len(tok), feed_forward_proj="gated-gelu"))
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8], guidance_embeds=True)
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,),
                        layers_per_block=1, latent_channels=1, norm_num_groups=1, use_quant_conv=False,
                        use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)
    FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip, tokenizer=tok,
                 text_encoder_2=t5, tokenizer_2=tok, transformer=transformer).save_pretrained(path)


def build_qwen_image(path):
    import torch
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline,
                           QwenImageTransformer2DModel)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer
    torch.manual_seed(0)
    folder = os.path.join(path, "_tok")
    write_bpe(folder, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok = Qwen2Tokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                         model_max_length=1024)
    cfg = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": len(tok),
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(tok))
    encoder = Qwen2_5_VLForConditionalGeneration(cfg)
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                              attention_head_dim=16, num_attention_heads=3, joint_attention_dim=16,
                                              guidance_embeds=False, axes_dims_rope=(8, 4, 4))
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=encoder, tokenizer=tok,
                      transformer=transformer).save_pretrained(path)


BUILDERS = {"flux1-dev": build_flux, "qwen-image": build_qwen_image}


def emitted(dmem, model, machine):
    base = [dmem, "plan", model] + machine + ["--engine", "diffusers"]
    out = subprocess.run(base + ["--json"], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"dmem plan failed: {out.stderr}")
    for plan in json.loads(out.stdout)["plans"]:
        text = subprocess.run(base + ["--emit", plan["id"]], capture_output=True, text=True, check=True).stdout
        yield plan["id"], text


def for_tiny(text, path, cuda):
    """Points a script at the tiny pipeline; returns (text, rewrites) or (None, reason)."""
    if "bitsandbytes" in text and "quant_backend" in text and not cuda:
        return None, "bitsandbytes needs CUDA"
    if "GGUF_FILE" in text:
        return None, "GGUF needs a file of the model"
    for call in ("enable_model_cpu_offload", "enable_sequential_cpu_offload"):
        if call in text and not cuda:
            return None, f"{call} needs an accelerator"
    rewrites = []
    text = re.sub(r'^MODEL_ID = .*$', f"MODEL_ID = {path!r}", text, flags=re.M)
    # A fresh offload folder per run: diffusers reuses group files it finds there.
    text = re.sub(r'^OFFLOAD_DIR = .*$', f"OFFLOAD_DIR = {tempfile.mkdtemp(dir=os.path.dirname(path))!r}",
                  text, flags=re.M)
    text = re.sub(r'^WIDTH, HEIGHT, STEPS = .*$', "WIDTH, HEIGHT, STEPS = 64, 64, 1", text, flags=re.M)
    if not cuda:
        for a, b in [('torch.device("cuda")', 'torch.device("cpu")'), ('device_map="cuda"', 'device_map="cpu"'),
                     ("use_stream=True", "use_stream=False")]:
            if a in text:
                text = text.replace(a, b)
                rewrites.append(f"{a} -> {b}")
    return text, rewrites


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dmem", default="build/bin/dmem")
    ap.add_argument("--models", default=",".join(BUILDERS))
    ap.add_argument("--machines", type=int, default=len(MACHINES), help="use the first N machines")
    args = ap.parse_args()
    import torch
    cuda = torch.cuda.is_available()
    failures, passed, skipped = [], 0, 0
    seen = set()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            path = os.path.join(tmp, model)
            BUILDERS[model](path)
            for machine in MACHINES[:args.machines]:
                for pid, text in emitted(args.dmem, model, machine):
                    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
                    if body in seen:
                        continue
                    seen.add(body)
                    tiny, info = for_tiny(text, path, cuda)
                    label = f"{model} {' '.join(machine)} plan {pid}"
                    if tiny is None:
                        skipped += 1
                        print(f"skip  {label}: {info}")
                        continue
                    script = os.path.join(tmp, "run.py")
                    with open(script, "w") as f:
                        f.write(tiny)
                    r = subprocess.run([sys.executable, script], cwd=tmp, capture_output=True, text=True)
                    if r.returncode == 0:
                        passed += 1
                        print(f"ok    {label}" + (f" (rewritten: {', '.join(info)})" if info else ""))
                    else:
                        last = " | ".join(r.stderr.strip().splitlines()[-3:]) or "?"
                        failures.append(label)
                        print(f"FAIL  {label}: {last}")
    print(f"{passed} passed, {len(failures)} failed, {skipped} skipped (distinct scripts)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
