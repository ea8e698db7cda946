#!/bin/sh
# qwen-image with stable-diffusion.cpp: plan 1 of dmem's plans for this machine.
# Made by: dmem plan qwen-image --gpu rtx5090 --vram 29GiB --ram 12GiB --engine sdcpp --emit 1
#
# Plan: transformer gguf q8_0 resident · text_encoder native dropped after its phase · vae native resident · vae tiling
# Machine: NVIDIA GeForce RTX 5090 29.00 GiB free · RAM 12.00 GiB available · 1328x1328, 50 steps
# dmem's estimate for stable-diffusion.cpp: VRAM peak 21.94 GiB, RAM at load 3.28 GiB, RAM steady 1.38 GiB
#   - text_encoder runs on the GPU for its phase and is freed, so it never shares VRAM with the denoiser
#   - VAE tiling bounds the decode activations by the tile size
#   - sd.cpp load RAM 3.28 GiB (weights read tensor by tensor into their backend buffers)
#
# Needs sd-cli from stable-diffusion.cpp (built with -DSD_CUDA=ON) and the single-file weights its docs link.
set -e
MODELS="${MODELS:-models}"  # the folder with the weights
SD="${SD:-sd-cli}"
# GGUF files, quantized by dmem (sd-cli reads the type from the file; --type would quantize every model alike).
[ -f "$MODELS/qwen_image_bf16-Q8_0.gguf" ] || dmem convert "$MODELS/qwen_image_bf16.safetensors" -q '*=q8_0' -o "$MODELS/qwen_image_bf16-Q8_0.gguf"
# The text encoders' weights are freed after conditioning (sd-cli's default).
exec "$SD" \
  --diffusion-model "$MODELS/qwen_image_bf16-Q8_0.gguf" \
  --llm "$MODELS/qwen_2.5_vl_7b.safetensors" \
  --vae "$MODELS/qwen_image_vae.safetensors" \
  -p 'A coffee shop entrance with a chalkboard sign that reads '\''dmem'\'', warm light' \
  --cfg-scale 2.5 --sampling-method euler --flow-shift 3 \
  -W 1328 -H 1328 --steps 50 -s 0 \
  --diffusion-fa --vae-tiling \
  -o dmem-plan-1.png -v
