"""ImageDream (image-prompt multi-view diffusion): our MultiViewUNet plus diffusers/transformers parts.

Importing this package pulls in diffusers and transformers (several seconds); import it lazily from
callers that may not need it.
"""

from video2gs.nn.imagedream.camera import imagedream_cameras
from video2gs.nn.imagedream.pipeline import ImageDreamPipeline
from video2gs.nn.imagedream.unet import MultiViewUNet

__all__ = ["ImageDreamPipeline", "MultiViewUNet", "imagedream_cameras"]
