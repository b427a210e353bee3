"""CLIP image preprocessing without torchvision (numerically what ``CLIPImageProcessor`` does with PIL).

uint8 RGB -> resize the shortest side to 224 (PIL bicubic, result rounded to uint8) -> centre crop
224x224 -> x 1/255 -> (x - mean) / std, all in float32 as transformers computes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, the value stored in preprocessor_config.json


@dataclass(frozen=True)
class ClipPreprocessConfig:
    """The fields of ``feature_extractor/preprocessor_config.json`` that the preprocessing uses."""

    shortest_edge: int = 224
    crop_height: int = 224
    crop_width: int = 224
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    resample: int = _BICUBIC
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, cfg: dict) -> "ClipPreprocessConfig":
        """Parse a transformers ``preprocessor_config.json`` dict; raise ValueError if it asks for steps we skip."""
        for flag in ("do_resize", "do_center_crop", "do_rescale", "do_normalize"):
            if not cfg.get(flag, True):
                raise ValueError(f"unsupported CLIP preprocessing: {flag}=false")
        size = cfg.get("size", {"shortest_edge": 224})
        if "shortest_edge" not in size:
            raise ValueError(f"unsupported CLIP preprocessing size {size} (need shortest_edge)")
        crop = cfg.get("crop_size", {"height": 224, "width": 224})
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        return cls(
            shortest_edge=int(size["shortest_edge"]),
            crop_height=int(crop["height"]),
            crop_width=int(crop["width"]),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)),
            image_mean=tuple(float(v) for v in cfg.get("image_mean", CLIP_MEAN)),
            image_std=tuple(float(v) for v in cfg.get("image_std", CLIP_STD)),
            resample=int(cfg.get("resample", _BICUBIC)),
            extra=cfg,
        )

    @classmethod
    def from_json(cls, path: Path) -> "ClipPreprocessConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        """The released ``preprocessor_config.json`` contents with this config's values."""
        d = dict(self.extra) if self.extra else {
            "do_convert_rgb": True,
            "do_center_crop": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor",
            "image_processor_type": "CLIPImageProcessor",
            "use_square_size": False,
        }
        own = asdict(self)
        own.pop("extra")
        d.update(
            crop_size={"height": own["crop_height"], "width": own["crop_width"]},
            size={"shortest_edge": own["shortest_edge"]},
            rescale_factor=own["rescale_factor"],
            image_mean=list(own["image_mean"]),
            image_std=list(own["image_std"]),
            resample=own["resample"],
        )
        return dict(sorted(d.items()))


def shortest_edge_size(height: int, width: int, shortest: int) -> tuple[int, int]:
    """(new_h, new_w) with the shorter side = ``shortest`` and the longer one scaled and truncated."""
    if height <= width:
        return shortest, int(shortest * width / height)
    return int(shortest * height / width), shortest


def clip_preprocess(image: np.ndarray, cfg: ClipPreprocessConfig = ClipPreprocessConfig()) -> torch.Tensor:
    """image: [H, W, 3] uint8 RGB -> pixel_values [1, 3, crop_h, crop_w] float32."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"clip_preprocess expects [H,W,3] uint8, got {image.shape} {image.dtype}")
    h, w = shortest_edge_size(image.shape[0], image.shape[1], cfg.shortest_edge)
    if h < cfg.crop_height or w < cfg.crop_width:
        raise ValueError(f"CLIP crop {cfg.crop_height}x{cfg.crop_width} is larger than the resized image {h}x{w}")
    resized = np.asarray(Image.fromarray(image).resize((w, h), resample=cfg.resample, reducing_gap=None))
    top, left = (h - cfg.crop_height) // 2, (w - cfg.crop_width) // 2
    crop = resized[top : top + cfg.crop_height, left : left + cfg.crop_width]
    x = (crop.astype(np.float64) * cfg.rescale_factor).astype(np.float32)
    x = (x - np.asarray(cfg.image_mean, dtype=np.float32)) / np.asarray(cfg.image_std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
