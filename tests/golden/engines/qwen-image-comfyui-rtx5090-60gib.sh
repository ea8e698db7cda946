#!/bin/sh
# qwen-image with ComfyUI: plan 1 of dmem's plans for this machine.
# Made by: dmem plan qwen-image --gpu rtx5090 --ram 60GiB --engine comfyui --emit 1
#
# Plan: transformer gguf q8_0 resident · text_encoder native model offload, parked pageable · vae native model offload, parked pageable · vae tiling
# Machine: NVIDIA GeForce RTX 5090 32.00 GiB free · RAM 60.00 GiB available · 1328x1328, 50 steps
# dmem's estimate for ComfyUI: VRAM peak 22.53 GiB, RAM at load 38.90 GiB, RAM steady 18.81 GiB
#   - VAE tiling bounds the decode activations by the tile size
#   - text_encoder: ComfyUI moves it back to RAM after encoding and keeps it there (its model cache), where dmem would free it
#   - ComfyUI load RAM 38.90 GiB (every loader reads its model into RAM before sampling starts)
#
# Needs ComfyUI and the ComfyUI-GGUF custom nodes (custom_nodes/ComfyUI-GGUF, pip install gguf). Loader nodes for this plan:
#   transformer                   UnetLoaderGGUF unet_name=qwen_image_bf16-Q8_0.gguf
#   text_encoder                  CLIPLoader clip_name=qwen_2.5_vl_7b.safetensors type=qwen_image device=default
#   vae                           VAELoader vae_name=qwen_image_vae.safetensors
#   decode                        VAEDecodeTiled (tiles bound the decode's activations)
set -e
COMFY="${COMFY:-ComfyUI}"  # the ComfyUI folder
MODELS="$COMFY/models"
# GGUF files, quantized by dmem from the repackaged single files (tensor names as ComfyUI reads them).
[ -f "$MODELS/diffusion_models/qwen_image_bf16-Q8_0.gguf" ] || dmem convert "$MODELS/diffusion_models/qwen_image_bf16.safetensors" -q '*=q8_0' -o "$MODELS/diffusion_models/qwen_image_bf16-Q8_0.gguf"
# The workflow in API format; once ComfyUI runs, queue it with
#   curl -s -H 'Content-Type: application/json' --data @dmem-plan-1.json http://127.0.0.1:8188/prompt
cat > dmem-plan-1.json <<'DMEM_JSON'
{
  "prompt": {
    "1": {
      "class_type": "UnetLoaderGGUF",
      "inputs": {
        "unet_name": "qwen_image_bf16-Q8_0.gguf"
      }
    },
    "2": {
      "class_type": "CLIPLoader",
      "inputs": {
        "clip_name": "qwen_2.5_vl_7b.safetensors",
        "type": "qwen_image",
        "device": "default"
      }
    },
    "3": {
      "class_type": "VAELoader",
      "inputs": {
        "vae_name": "qwen_image_vae.safetensors"
      }
    },
    "4": {
      "class_type": "CLIPTextEncode",
      "inputs": {
        "text": "A coffee shop entrance with a chalkboard sign that reads 'dmem', warm light",
        "clip": [
          "2",
          0
        ]
      }
    },
    "5": {
      "class_type": "CLIPTextEncode",
      "inputs": {
        "text": " ",
        "clip": [
          "2",
          0
        ]
      }
    },
    "6": {
      "class_type": "ModelSamplingAuraFlow",
      "inputs": {
        "model": [
          "1",
          0
        ],
        "shift": 3.1
      }
    },
    "7": {
      "class_type": "EmptySD3LatentImage",
      "inputs": {
        "width": 1328,
        "height": 1328,
        "batch_size": 1
      }
    },
    "8": {
      "class_type": "KSampler",
      "inputs": {
        "model": [
          "6",
          0
        ],
        "seed": 0,
        "steps": 50,
        "cfg": 2.5,
        "sampler_name": "euler",
        "scheduler": "simple",
        "positive": [
          "4",
          0
        ],
        "negative": [
          "5",
          0
        ],
        "latent_image": [
          "7",
          0
        ],
        "denoise": 1.0
      }
    },
    "9": {
      "class_type": "VAEDecodeTiled",
      "inputs": {
        "samples": [
          "8",
          0
        ],
        "vae": [
          "3",
          0
        ],
        "tile_size": 512,
        "overlap": 64,
        "temporal_size": 64,
        "temporal_overlap": 8
      }
    },
    "10": {
      "class_type": "SaveImage",
      "inputs": {
        "images": [
          "9",
          0
        ],
        "filename_prefix": "dmem-plan-1"
      }
    }
  }
}
DMEM_JSON
# Launch ComfyUI with the plan's memory flags.
exec python "$COMFY/main.py"
