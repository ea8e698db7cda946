#!/bin/sh
# flux1-dev with stable-diffusion.cpp: plan 1 of dmem's plans for this machine.
# Made by: dmem plan flux1-dev --gpu rtx5090 --ram 60GiB --engine sdcpp --emit 1
#
# Plan: transformer native resident · text_encoder native dropped after its phase · text_encoder_2 native dropped after its phase · vae native resident · vae tiling
# Machine: NVIDIA GeForce RTX 5090 32.00 GiB free · RAM 60.00 GiB available · 1024x1024, 28 steps
# dmem's estimate for stable-diffusion.cpp: VRAM peak 23.82 GiB, RAM at load 1.74 GiB, RAM steady 1.38 GiB
#   - text_encoder runs on the GPU for its phase and is freed, so it never shares VRAM with the denoiser
#   - text_encoder_2 runs on the GPU for its phase and is freed, so it never shares VRAM with the denoiser
#   - VAE tiling bounds the decode activations by the tile size
#   - sd.cpp load RAM 1.74 GiB (weights read tensor by tensor into their backend buffers)
#
# Needs sd-cli from stable-diffusion.cpp (built with -DSD_CUDA=ON) and the single-file weights its docs link.
set -e
MODELS="${MODELS:-models}"  # the folder with the weights
SD="${SD:-sd-cli}"
# The text encoders' weights are freed after conditioning (sd-cli's default).
exec "$SD" \
  --diffusion-model "$MODELS/flux1-dev.safetensors" \
  --clip_l "$MODELS/clip_l.safetensors" \
  --t5xxl "$MODELS/t5xxl_fp16.safetensors" \
  --vae "$MODELS/ae.safetensors" \
  -p 'A coffee shop entrance with a chalkboard sign that reads '\''dmem'\'', warm light' \
  --cfg-scale 1.0 --sampling-method euler \
  -W 1024 -H 1024 --steps 28 -s 0 \
  --diffusion-fa --vae-tiling \
  -o dmem-plan-1.png -v
