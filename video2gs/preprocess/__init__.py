"""Preprocessing: background removal (segment.py) and the clip's square crop (crop.py)."""

from video2gs.preprocess.crop import Box, ClipCrop, mask_box
from video2gs.preprocess.segment import METHODS, REMBG_MODELS, NoObjectError, Segmenter, make_segmenter

__all__ = ["Box", "ClipCrop", "METHODS", "NoObjectError", "REMBG_MODELS", "Segmenter", "make_segmenter", "mask_box"]
