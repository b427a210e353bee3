"""CLIP image similarity: cosine similarity of CLIP image embeddings of prediction and ground truth.

The encoder is the one already on disk with ImageDream (``image_encoder/``: CLIP ViT-H/14, LAION-2B,
loaded as ``transformers.CLIPVisionModel``; preprocessing from ``feature_extractor/``, done by
:func:`video2gs.nn.imagedream.clip_preprocess.clip_preprocess`). That folder holds the vision tower
without CLIP's final projection, so the embedding is the pooled (post-layer-norm CLS) feature; the
cosine of two such features ranks images like the projected one but is not numerically CLIP-score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video2gs.errors import UserError


def find_encoder() -> Path | None:
    """The ImageDream folder when the registry finds it on this machine (never downloads), else None."""
    from video2gs import weights

    try:
        present, path = weights.presence(weights.get_card("imagedream"))
    except UserError:
        return None
    return path if present and path is not None and (path / "image_encoder").is_dir() else None


class ClipSimilarity:
    """``embed(images)``: unit CLIP embeddings; the similarity of two images is the dot product of theirs."""

    def __init__(self, folder: str | Path, device=None):
        from transformers import CLIPVisionModel

        from video2gs.nn.imagedream.clip_preprocess import ClipPreprocessConfig

        folder = Path(folder)
        try:
            self.model = CLIPVisionModel.from_pretrained(folder, subfolder="image_encoder", dtype=torch.float32,
                                                         local_files_only=True, use_safetensors=True).eval()
            cfg_path = folder / "feature_extractor" / "preprocessor_config.json"
            self.config = ClipPreprocessConfig.from_json(cfg_path) if cfg_path.is_file() else ClipPreprocessConfig()
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load the CLIP image encoder from {folder / 'image_encoder'}: {exc}") from exc
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model.to(self.device)

    @torch.no_grad()
    def embed(self, images: np.ndarray) -> torch.Tensor:
        """images [N,H,W,3] float in [0,1] -> unit embeddings [N,D]."""
        from video2gs.nn.imagedream.clip_preprocess import clip_preprocess

        pixels = torch.cat([clip_preprocess(np.clip(np.rint(im * 255), 0, 255).astype(np.uint8), self.config)
                            for im in images])
        feats = self.model(pixel_values=pixels.to(self.device)).pooler_output.float()
        return torch.nn.functional.normalize(feats, dim=-1)
