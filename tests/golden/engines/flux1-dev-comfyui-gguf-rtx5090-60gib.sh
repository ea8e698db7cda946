#!/bin/sh
# flux1-dev with ComfyUI: plan 4 of dmem's plans for this machine.
# Made by: dmem plan flux1-dev --gpu rtx5090 --ram 60GiB --engine comfyui --emit 4
#
# Plan: transformer native resident · text_encoder native model offload, parked pageable · text_encoder_2 gguf q8_0 model offload, parked pageable · vae native model offload, parked pageable · vae tiling
# Machine: NVIDIA GeForce RTX 5090 32.00 GiB free · RAM 60.00 GiB available · 1024x1024, 28 steps
# dmem's estimate for ComfyUI: VRAM peak 24.41 GiB, RAM at load 30.38 GiB, RAM steady 8.34 GiB
#   - VAE tiling bounds the decode activations by the tile size
#   - text_encoder: ComfyUI moves it back to RAM after encoding and keeps it there (its model cache), where dmem would free it
#   - text_encoder_2: ComfyUI moves it back to RAM after encoding and keeps it there (its model cache), where dmem would free it
#   - ComfyUI load RAM 30.38 GiB (every loader reads its model into RAM before sampling starts)
#
# Needs ComfyUI and the ComfyUI-GGUF custom nodes (custom_nodes/ComfyUI-GGUF, pip install gguf). Loader nodes for this plan:
#   transformer                   UNETLoader unet_name=flux1-dev.safetensors weight_dtype=default
#   text_encoder+text_encoder_2   DualCLIPLoaderGGUF clip_name1=clip_l.safetensors clip_name2=t5xxl_fp16-Q8_0.gguf type=flux
#   vae                           VAELoader vae_name=ae.safetensors
#   decode                        VAEDecodeTiled (tiles bound the decode's activations)
set -e
COMFY="${COMFY:-ComfyUI}"  # the ComfyUI folder
MODELS="$COMFY/models"
# GGUF files, quantized by dmem from the repackaged single files (tensor names as ComfyUI reads them).
[ -f "$MODELS/text_encoders/t5xxl_fp16-Q8_0.gguf" ] || dmem convert "$MODELS/text_encoders/t5xxl_fp16.safetensors" -q '*=q8_0' -o "$MODELS/text_encoders/t5xxl_fp16-Q8_0.gguf"
# The workflow in API format; once ComfyUI runs, queue it with
#   curl -s -H 'Content-Type: application/json' --data @dmem-plan-4.json http://127.0.0.1:8188/prompt
cat > dmem-plan-4.json <<'DMEM_JSON'
{
  "prompt": {
    "1": {
      "class_type": "UNETLoader",
      "inputs": {
        "unet_name": "flux1-dev.safetensors",
        "weight_dtype": "default"
      }
    },
    "2": {
      "class_type": "DualCLIPLoaderGGUF",
      "inputs": {
        "clip_name1": "clip_l.safetensors",
        "clip_name2": "t5xxl_fp16-Q8_0.gguf",
        "type": "flux"
      }
    },
    "3": {
      "class_type": "VAELoader",
      "inputs": {
        "vae_name": "ae.safetensors"
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
      "class_type": "FluxGuidance",
      "inputs": {
        "conditioning": [
          "4",
          0
        ],
        "guidance": 3.5
      }
    },
    "7": {
      "class_type": "EmptySD3LatentImage",
      "inputs": {
        "width": 1024,
        "height": 1024,
        "batch_size": 1
      }
    },
    "8": {
      "class_type": "KSampler",
      "inputs": {
        "model": [
          "1",
          0
        ],
        "seed": 0,
        "steps": 28,
        "cfg": 1.0,
        "sampler_name": "euler",
        "scheduler": "simple",
        "positive": [
          "6",
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
        "filename_prefix": "dmem-plan-4"
      }
    }
  }
}
DMEM_JSON
# Launch ComfyUI with the plan's memory flags.
exec python "$COMFY/main.py"
