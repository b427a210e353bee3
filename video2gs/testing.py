"""Small random-weight models in the released file formats, for tests, benchmarks and dry runs.

They exercise the real loading code (official key names, safetensors, the diffusers folder
layout) without multi-GB downloads; their outputs are meaningless shapes of the right size.
"""

from __future__ import annotations

from pathlib import Path

import torch

from video2gs.nn.checkpoint import save_checkpoint
from video2gs.nn.configs import L4GMConfig, get_config
from video2gs.nn.l4gm import L4GM


def micro_l4gm_config(input_size: int = 64) -> L4GMConfig:
    """A micro L4GM: 3 downsamples, attention (multi-view + temporal) at the coarsest level only,
    splat map input_size/2.

    At input 64: 4 views x 32² = 4,096 Gaussians per frame, ~1.3 M parameters.
    """
    return L4GMConfig(
        input_size=input_size,
        down_channels=(32, 32, 64, 64),
        down_attention=(False, False, False, True),
        mid_attention=True,
        up_channels=(64, 64, 32),
        up_attention=(True, False, False),
        splat_size=input_size // 2,
        name="micro",
    )


def random_l4gm(config: L4GMConfig | str = "micro", seed: int = 0) -> L4GM:
    """An L4GM with PyTorch's default random init (seeded)."""
    cfg = micro_l4gm_config() if config == "micro" else (get_config(config) if isinstance(config, str) else config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return L4GM(cfg).eval()


def write_random_l4gm(path: str | Path, config: L4GMConfig | str = "micro", seed: int = 0,
                      side_views: str = "reference") -> Path:
    """Save a random L4GM as official-layout safetensors at ``path`` (``side_views``: what it claims
    to have been trained with, see :data:`video2gs.nn.checkpoint.SIDE_VIEWS_METADATA_KEY`)."""
    from video2gs.nn.checkpoint import SIDE_VIEWS_METADATA_KEY

    return save_checkpoint(random_l4gm(config, seed), Path(path), metadata={SIDE_VIEWS_METADATA_KEY: side_views})


def write_random_imagedream(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny random ImageDream pipeline in the released folder layout."""
    from video2gs.nn.imagedream.random_init import random_pipeline

    random_pipeline(seed=seed).save_pretrained(Path(folder))
    return Path(folder)
