#!/usr/bin/env python3
# QwenImagePipeline with diffusers: plan 1 of dmem's plans for this machine.
# Made by: dmem plan qwen-image --gpu rtx5090 --vram 29GiB --ram 12GiB --engine diffusers --emit 1
#
# Plan: transformer int8 resident · text_encoder native dropped after its phase · vae native resident · vae tiling
# Machine: NVIDIA GeForce RTX 5090 29.00 GiB free · RAM 12.00 GiB available · 1328x1328, 50 steps
# dmem's estimate for diffusers: VRAM peak 20.97 GiB, RAM at load 3.00 GiB, RAM steady 3.12 GiB, pinned 128.00 MiB
#   - text_encoder runs on the GPU for its phase and is freed, so it never shares VRAM with the denoiser
#   - VAE tiling bounds the decode activations by the tile size
#   - diffusers load RAM 3.00 GiB as emitted (low_cpu_mem_usage=True, device_map); 60.58 GiB with neither (every component built, then filled, in RAM)
#
# Needs diffusers >= 0.35, transformers, accelerate and torch, bitsandbytes.
import gc

import torch
from diffusers import DiffusionPipeline
from diffusers import PipelineQuantizationConfig

MODEL_ID = "Qwen/Qwen-Image"
PROMPT = "A coffee shop entrance with a chalkboard sign that reads 'dmem', warm light"
NEGATIVE_PROMPT = " "  # Qwen-Image's true CFG needs a negative prompt
WIDTH, HEIGHT, STEPS = 1328, 1328, 50
DEVICE = torch.device("cuda")
DTYPE = torch.bfloat16


def free():
    """Returns freed weights to the system (modules hold reference cycles)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- Phase 1: encode the prompt, then free the text encoder(s) ----
# They run alone on the GPU and are freed before the denoiser loads: the two never share memory.
encoder = DiffusionPipeline.from_pretrained(
    MODEL_ID,
    transformer=None, vae=None,  # only the encoders load here
    torch_dtype=DTYPE,
    low_cpu_mem_usage=True,
    device_map="cuda",  # straight to the GPU, never whole in RAM
)
with torch.no_grad():
    prompt_embeds, prompt_embeds_mask = encoder.encode_prompt(prompt=PROMPT, device=DEVICE)
    negative_prompt_embeds, negative_prompt_embeds_mask = encoder.encode_prompt(
        prompt=NEGATIVE_PROMPT, device=DEVICE)
# The embeddings (a few MB) stay, in the denoiser's dtype (encode_prompt returns the encoder's).
prompt_embeds = prompt_embeds.to(DEVICE, DTYPE)
negative_prompt_embeds = negative_prompt_embeds.to(DEVICE, DTYPE)
prompt_embeds_mask, negative_prompt_embeds_mask = [
    None if t is None else t.to(DEVICE) for t in (prompt_embeds_mask, negative_prompt_embeds_mask)
]
del encoder
free()

# ---- Phase 2: load the pipeline the way the plan places it ----
pipe = DiffusionPipeline.from_pretrained(
    MODEL_ID,
    text_encoder=None,  # encoded in phase 1
    torch_dtype=DTYPE,
    quantization_config=PipelineQuantizationConfig(
        quant_backend="bitsandbytes_8bit",
        quant_kwargs={"load_in_8bit": True},
        components_to_quantize=["transformer"],
    ),
    low_cpu_mem_usage=True,  # weights fill an empty model: no second copy in RAM
    device_map="cuda",  # straight to the GPU, never whole in RAM
)
# Decode in tiles: bounds the VAE's activations by the tile size.
pipe.vae.enable_tiling()

# ---- generate ----
result = pipe(
    prompt_embeds=prompt_embeds,
    prompt_embeds_mask=prompt_embeds_mask,
    negative_prompt_embeds=negative_prompt_embeds,
    negative_prompt_embeds_mask=negative_prompt_embeds_mask,
    true_cfg_scale=4.0,
    width=WIDTH,
    height=HEIGHT,
    num_inference_steps=STEPS,
    generator=torch.Generator("cpu").manual_seed(0),
)
result.images[0].save("dmem-plan-1.png")
