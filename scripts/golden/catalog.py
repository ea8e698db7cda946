#!/usr/bin/env python3
"""Writes tests/golden/catalog/<name>.json: the expected tensors of every built-in catalog model.

Tensor names and shapes come from the reference transcription model_shapes.py (FORMATS.md §6),
imported by path. The diffusers AutoencoderKL (SDXL / FLUX / SD3 VAEs) is not in model_shapes.py;
it is transcribed below from diffusers models/autoencoders/{autoencoder_kl.py,vae.py} and
unets/unet_2d_blocks.py, and checked against the commonly cited parameter counts
(SDXL VAE 83,653,863; FLUX VAE 83,819,683) before anything is written.

Per component the file holds: class name, tensor count, element count (all tensors), parameter
count (without the SD3 pos_embed persistent buffer), the sha256 of the canonical text (one
"name d0,d1,...\\n" line per tensor, lines sorted by name) and, for the VAEs (the part that is
transcribed here rather than in model_shapes.py), that text itself so a failing test can name the
differing tensors. The files stay small (about 100 KB in all).

usage: scripts/golden/catalog.py [--reference PATH/model_shapes.py] [--out tests/golden/catalog]
"""
import argparse
import hashlib
import importlib.util
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def load_reference(path):
    spec = importlib.util.spec_from_file_location("model_shapes", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def autoencoder_kl(ms, latent, quant_convs, block_out=(128, 256, 512, 512), lpb=2, io=3):
    """diffusers AutoencoderKL state dict (Encoder/Decoder with DownEncoderBlock2D,
    UNetMidBlock2D, UpDecoderBlock2D; ResnetBlock2D without time embedding)."""
    sd = ms.SD()

    def resnet(p, i, o):
        sd.ln(p + ".norm1", i); sd.conv(p + ".conv1", i, o, (3, 3))
        sd.ln(p + ".norm2", o); sd.conv(p + ".conv2", o, o, (3, 3))
        if i != o:
            sd.conv(p + ".conv_shortcut", i, o, (1, 1))

    def mid(p, c):
        resnet(p + ".resnets.0", c, c)
        a = p + ".attentions.0"
        sd.ln(a + ".group_norm", c)
        for n in ("to_q", "to_k", "to_v", "to_out.0"):
            sd.lin(a + "." + n, c, c)
        resnet(p + ".resnets.1", c, c)

    sd.conv("encoder.conv_in", io, block_out[0], (3, 3))
    out_c = block_out[0]
    for i, c in enumerate(block_out):
        in_c, out_c = out_c, c
        for r in range(lpb):
            resnet(f"encoder.down_blocks.{i}.resnets.{r}", in_c if r == 0 else out_c, out_c)
        if i != len(block_out) - 1:
            sd.conv(f"encoder.down_blocks.{i}.downsamplers.0.conv", out_c, out_c, (3, 3))
    mid("encoder.mid_block", block_out[-1])
    sd.ln("encoder.conv_norm_out", block_out[-1])
    sd.conv("encoder.conv_out", block_out[-1], 2 * latent, (3, 3))
    sd.conv("decoder.conv_in", latent, block_out[-1], (3, 3))
    mid("decoder.mid_block", block_out[-1])
    rev = list(reversed(block_out))
    out_c = rev[0]
    for i, c in enumerate(rev):
        prev, out_c = out_c, c
        for r in range(lpb + 1):
            resnet(f"decoder.up_blocks.{i}.resnets.{r}", prev if r == 0 else out_c, out_c)
        if i != len(rev) - 1:
            sd.conv(f"decoder.up_blocks.{i}.upsamplers.0.conv", out_c, out_c, (3, 3))
    sd.ln("decoder.conv_norm_out", block_out[0])
    sd.conv("decoder.conv_out", block_out[0], io, (3, 3))
    if quant_convs:
        sd.conv("quant_conv", 2 * latent, 2 * latent, (1, 1))
        sd.conv("post_quant_conv", latent, latent, (1, 1))
    return sd


def pipelines(ms):
    M = ms.MODELS

    def ref(key, **extra):
        fn, kw = M[key]
        return fn(**dict(kw, **extra))

    def ref_key(prefix):
        return next(k for k in M if k.startswith(prefix))

    qwen = [
        ("transformer", "QwenImageTransformer2DModel", lambda: ref("qwen_image_transformer")),
        ("text_encoder", "Qwen2_5_VLForConditionalGeneration", lambda: ref("qwen2_5_vl_7b")),
        ("vae", "AutoencoderKLQwenImage", lambda: ref("qwen_image_vae")),
    ]

    def flux(guidance):
        return [
            ("transformer", "FluxTransformer2DModel",
             lambda: ref("flux1_dev_transformer", guidance_embeds=guidance)),
            ("text_encoder", "CLIPTextModel", lambda: ref("clip_vit_l14_text")),
            ("text_encoder_2", "T5EncoderModel", lambda: ref("t5_v1_1_xxl_encoder")),
            ("vae", "AutoencoderKL", lambda: autoencoder_kl(ms, 16, False)),
        ]

    return {
        "qwen-image": ("QwenImagePipeline", qwen),
        "qwen-image-edit": ("QwenImageEditPipeline", qwen),
        "flux1-dev": ("FluxPipeline", flux(True)),
        "flux1-schnell": ("FluxPipeline", flux(False)),
        "sd35-large": ("StableDiffusion3Pipeline", [
            ("transformer", "SD3Transformer2DModel", lambda: ref("sd35_large_transformer")),
            ("text_encoder", "CLIPTextModelWithProjection",
             lambda: ref("clip_vit_l14_text", projection_dim=768)),
            ("text_encoder_2", "CLIPTextModelWithProjection",
             lambda: ref("clip_vit_bigG14_text_with_projection")),
            ("text_encoder_3", "T5EncoderModel", lambda: ref("t5_v1_1_xxl_encoder")),
            ("vae", "AutoencoderKL", lambda: autoencoder_kl(ms, 16, False)),
        ]),
        "sdxl": ("StableDiffusionXLPipeline", [
            ("unet", "UNet2DConditionModel", lambda: ref("sdxl_base_unet")),
            ("text_encoder", "CLIPTextModel", lambda: ref("clip_vit_l14_text")),
            ("text_encoder_2", "CLIPTextModelWithProjection",
             lambda: ref("clip_vit_bigG14_text_with_projection")),
            ("vae", "AutoencoderKL", lambda: autoencoder_kl(ms, 4, True)),
        ]),
        "wan21-t2v-14b": ("WanPipeline", [
            ("transformer", "WanTransformer3DModel", lambda: ref("wan21_t2v_14b_transformer")),
            ("text_encoder", "UMT5EncoderModel", lambda: ref(ref_key("umt5_xxl_encoder"))),
            ("vae", "AutoencoderKLWan", lambda: ref(ref_key("wan21_vae"))),
        ]),
    }


def canonical(sd):
    lines = sorted(f"{k} {','.join(str(d) for d in s)}\n" for k, s in sd.items())
    return "".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default="/work/shared/reference/model_shapes.py")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "catalog"))
    args = ap.parse_args()
    ms = load_reference(args.reference)

    # Cross-check the AutoencoderKL transcription against the published counts.
    for latent, quant, want in ((4, True, 83_653_863), (16, False, 83_819_683)):
        got = ms.count(autoencoder_kl(ms, latent, quant))
        if got != want:
            sys.exit(f"AutoencoderKL latent={latent}: {got:,} parameters, expected {want:,}")

    os.makedirs(args.out, exist_ok=True)
    for name, (pipeline, comps) in pipelines(ms).items():
        out = {"name": name, "pipeline_class": pipeline, "components": []}
        for comp, cls, gen in comps:
            sd = gen()
            text = canonical(sd)
            elements = sum(math.prod(s) for s in sd.values())
            buffers = sum(math.prod(s) for k, s in sd.items() if k == "pos_embed.pos_embed")
            entry = {
                "name": comp,
                "class_name": cls,
                "tensors": len(sd),
                "elements": elements,
                "params": elements - buffers,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            }
            if comp == "vae":
                entry["canonical"] = text
            out["components"].append(entry)
        path = os.path.join(args.out, name + ".json")
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main()
