"""Random-weight ImageDream pipelines (tiny for tests, full size for benchmarks); no downloads.

Every parameter is redrawn (norm affines and zero-initialised convs included), so nothing sits at an
identity or zero that could hide a wiring error.
"""

from __future__ import annotations

import math

import torch
from diffusers import AutoencoderKL, DDIMScheduler
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig, CLIPVisionModel

from video2gs.nn.imagedream.pipeline import ImageDreamPipeline
from video2gs.nn.imagedream.resampler import EMBEDDING_DIM
from video2gs.nn.imagedream.unet import MultiViewUNet

# The released scheduler (docs/imagedream.md §2).
SCHEDULER_CONFIG = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    prediction_type="epsilon", clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    timestep_spacing="leading",
)  # fmt: skip

# Attention only at 16² keeps the 5-view self-attention small (1280 tokens per object).
TINY_UNET = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=32, channel_mult=[1, 2], num_res_blocks=1,
    attention_resolutions=[2], num_head_channels=16, transformer_depth=1, context_dim=64, camera_dim=16, ip_dim=4,
)  # fmt: skip
# Four blocks = three downsamples: 256² images -> 32² latents, as the real VAE.
TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=4, sample_size=256,
    block_out_channels=[4, 4, 8, 8], down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215,
)  # fmt: skip
TINY_TEXT = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
    hidden_act="gelu", projection_dim=64,
)  # fmt: skip
# The resampler's input width is fixed at 1280, so the tiny vision tower keeps that width but is shallow,
# with a narrow MLP and big patches (50 tokens).
TINY_VISION = dict(
    hidden_size=EMBEDDING_DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
    patch_size=32, hidden_act="gelu", projection_dim=64,
)  # fmt: skip


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer over single bytes plus two merges ("cat"): any text tokenises, offline."""
    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    merges = [("c", "a"), ("ca", "t</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token="!")


@torch.no_grad()
def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Redraw every parameter: matrices N(0, 1/fan_in), 1-D weights 1 + 0.1 N, biases 0.05 N, latents N(0, 1)."""
    generators: dict[torch.device, torch.Generator] = {}
    for name, p in module.named_parameters():
        g = generators.get(p.device)
        if g is None:
            g = generators[p.device] = torch.Generator(p.device).manual_seed(seed)
        if name.endswith("latents"):
            p.normal_(0.0, 1.0, generator=g)
        elif p.ndim > 1:
            p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()), generator=g)
        elif name.endswith("bias"):
            p.normal_(0.0, 0.05, generator=g)
        else:
            p.normal_(0.0, 0.1, generator=g).add_(1.0)
    return module


def random_unet(
    config: dict, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> MultiViewUNet:
    """MultiViewUNet with random weights, built on the meta device and materialised once (fast at full size)."""
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        unet = MultiViewUNet(**config)
    unet = unet.to_empty(device=device)
    if dtype != torch.float32:
        unet = unet.to(dtype)
    return randomize_(unet, seed).eval()


def random_pipeline(
    unet_config: dict = TINY_UNET,
    vae_config: dict = TINY_VAE,
    text_config: dict = TINY_TEXT,
    vision_config: dict = TINY_VISION,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> ImageDreamPipeline:
    """An ImageDreamPipeline with random weights (defaults: tiny); configs are the released config.json dicts."""
    strip = lambda cfg, drop=(): {k: v for k, v in cfg.items() if not k.startswith("_") and k not in drop}  # noqa: E731
    unet = random_unet(unet_config, device, dtype, seed)
    tokenizer = tiny_tokenizer()
    meta_keys = ("architectures", "torch_dtype", "transformers_version", "model_type")
    token_ids = {f"{k}_token_id": getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    text_cfg = CLIPTextConfig(**{"vocab_size": len(tokenizer), **strip(text_config, meta_keys), **token_ids})
    vision_cfg = CLIPVisionConfig(**strip(vision_config, meta_keys))
    with torch.device(device):
        vae = AutoencoderKL(**strip(vae_config))
        text_encoder = CLIPTextModel(text_cfg)
        image_encoder = CLIPVisionModel(vision_cfg)
    for i, module in enumerate((vae, text_encoder, image_encoder)):
        randomize_(module, seed + 1 + i)
    pipe = ImageDreamPipeline(unet, vae, text_encoder, tokenizer, image_encoder, DDIMScheduler(**SCHEDULER_CONFIG))
    return pipe.to(device, dtype)
