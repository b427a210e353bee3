"""ImageDream image-to-multi-view pipeline: one image -> 4 views at azimuth 0/90/180/270 on white.

Built from diffusers/transformers parts (AutoencoderKL, DDIMScheduler, CLIPTextModel + CLIPTokenizer,
CLIPVisionModel) plus our :class:`MultiViewUNet`. Loads the released ``ashawkey/imagedream-ipmv-diffusers``
folder component by component (no ``DiffusionPipeline``, no remote code) and writes the same layout.

Algorithm (docs/imagedream.md §6): CLIP penultimate hidden states of the image (negative: zeros), the
clean VAE latent of the image (negative: zeros), text embeddings of prompt / negative prompt; DDIM (eta 0)
over 5 latents (4 views + reference slot) with classifier-free guidance as one batch of 10; decode the 4
views and reorder them [1, 2, 3, 0] so the input's view comes first.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModel

from video2gs.errors import UserError
from video2gs.nn.imagedream.camera import imagedream_cameras
from video2gs.nn.imagedream.clip_preprocess import ClipPreprocessConfig, clip_preprocess
from video2gs.nn.imagedream.unet import MultiViewUNet

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "image_encoder", "feature_extractor", "scheduler")

# model_index.json of the released folder (the unet entry names the upstream remote-code class; we never
# import it, the entry is kept so saved folders look like the release).
MODEL_INDEX = {
    "_class_name": "MVDreamPipeline",
    "_diffusers_version": "0.25.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModel"],
    "requires_safety_checker": False,
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["mv_unet", "MultiViewUNetModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}

NUM_VIEWS = 4
IMAGE_SIZE = 256
LGM_ORDER = (1, 2, 3, 0)  # raw ImageDream views -> azimuth 0/90/180/270 relative to the input

ProgressFn = Callable[[int, int], None]


def resolve_device_dtype(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto"):
    """'auto' device = CUDA if available else CPU; 'auto' dtype = fp16 on CUDA, fp32 elsewhere."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype == "auto":
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    elif isinstance(dtype, str):
        names = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16,
                 "bfloat16": torch.bfloat16, "fp32": torch.float32, "float32": torch.float32}  # fmt: skip
        if dtype not in names:
            raise UserError(f"unknown dtype {dtype!r} (use auto, fp16, bf16 or fp32)")
        dtype = names[dtype]
    return device, dtype


def image_on_white(image) -> np.ndarray:
    """PIL image or array [H,W,3|4] (uint8, or float in [0,1]) -> float32 [H,W,3] RGB on white."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA"))  # also keeps palette transparency; opaque RGB gets alpha 1
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise UserError(f"the ImageDream input must be an RGB or RGBA image [H,W,3|4], got shape {image.shape}")
    if image.dtype == np.uint8:
        rgba = image.astype(np.float32) / 255.0
    elif np.issubdtype(image.dtype, np.floating):
        rgba = image.astype(np.float32)
        if not np.isfinite(rgba).all() or rgba.min() < 0.0 or rgba.max() > 1.0:
            raise UserError("the ImageDream input image has float values outside [0, 1]")
    else:
        raise UserError(f"the ImageDream input image has unsupported dtype {image.dtype} (use uint8 or float)")
    if rgba.shape[2] == 4:
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return rgba


def write_bpe_files(tokenizer: CLIPTokenizer, folder: Path) -> None:
    """Write ``vocab.json`` and ``merges.txt`` (the released tokenizer files) from a loaded tokenizer."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = dict(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")


def _load(name: str, folder: Path, loader: Callable):
    """Run one component loader, turning file problems into a one-line UserError naming the component."""
    try:
        return loader()
    except (OSError, ValueError, RuntimeError, KeyError, json.JSONDecodeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = " ".join(lines[:2])[:300] if lines else type(exc).__name__
        raise UserError(f"cannot load the ImageDream {name} from {folder / name}: {detail}") from exc


def _check_complete(name: str, folder: Path, info: dict) -> None:
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise UserError(
            f"the ImageDream {name} in {folder / name} lacks {len(missing)} weights (e.g. {missing[0]}): "
            "wrong or damaged files"
        )


def check_layout(folder: str | Path) -> dict:
    """Check that ``folder`` is an ImageDream model folder in the released layout (cheap: no weights
    are read); returns its ``model_index.json``. One-line :class:`UserError` otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"ImageDream model folder {folder} not found")
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise UserError(f"{folder} is not an ImageDream model folder: model_index.json is missing")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {index_path}: {exc}") from exc
    for name in COMPONENTS:
        if name not in index:
            raise UserError(f"{index_path} does not list the ImageDream component '{name}'")
        if not (folder / name).is_dir():
            raise UserError(
                f"ImageDream model folder {folder} is incomplete: component '{name}' ({folder / name}) is missing"
            )

    tok = folder / "tokenizer"
    bpe_files = all((tok / f).is_file() for f in ("vocab.json", "merges.txt"))
    if not bpe_files and not (tok / "tokenizer.json").is_file():
        raise UserError(f"the ImageDream tokenizer folder {tok} has no vocab.json + merges.txt (or tokenizer.json)")
    return index


class ImageDreamPipeline:
    """Image (+ optional prompt) -> 4 views. Components are plain attributes; see :meth:`from_pretrained`."""

    def __init__(
        self,
        unet: MultiViewUNet,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        image_encoder: CLIPVisionModel,
        scheduler: DDIMScheduler,
        clip_config: ClipPreprocessConfig | None = None,
    ):
        self.unet = unet.eval()
        self.vae = vae.eval()
        self.text_encoder = text_encoder.eval()
        self.tokenizer = tokenizer
        self.image_encoder = image_encoder.eval()
        self.scheduler = scheduler
        self.clip_config = clip_config or ClipPreprocessConfig()

    # ----------------------------------------------------------------------------------- loading / saving
    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto"
    ) -> "ImageDreamPipeline":
        """Load a folder in the released layout (model_index.json + one subfolder per component)."""
        folder = Path(folder)
        device, dtype = resolve_device_dtype(device, dtype)
        check_layout(folder)

        # diffusers takes torch_dtype=, transformers 5 dtype=.
        weighted = (("unet", MultiViewUNet, "torch_dtype"), ("vae", AutoencoderKL, "torch_dtype"),
                    ("text_encoder", CLIPTextModel, "dtype"), ("image_encoder", CLIPVisionModel, "dtype"))  # fmt: skip
        models = {}
        for name, model_cls, dtype_key in weighted:
            kwargs = {dtype_key: dtype, "local_files_only": True, "use_safetensors": True, "output_loading_info": True}
            model, info = _load(name, folder, lambda: model_cls.from_pretrained(folder, subfolder=name, **kwargs))
            _check_complete(name, folder, info)
            models[name] = model
        tokenizer = _load("tokenizer", folder, lambda: CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True))
        scheduler = _load(
            "scheduler",
            folder,
            lambda: DDIMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True),
        )
        clip_config = _load(
            "feature_extractor",
            folder,
            lambda: ClipPreprocessConfig.from_json(folder / "feature_extractor" / "preprocessor_config.json"),
        )
        pipe = cls(**models, tokenizer=tokenizer, scheduler=scheduler, clip_config=clip_config)
        return pipe.to(device, dtype)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the released layout; the folder appears complete or not at all (temp folder + rename)."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise UserError(f"cannot save the ImageDream pipeline: {folder} exists and is not an empty folder")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            (tmp / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2, sort_keys=True) + "\n")
            self.unet.save_pretrained(tmp / "unet", safe_serialization=True)
            self.vae.save_pretrained(tmp / "vae", safe_serialization=True)
            self.text_encoder.save_pretrained(tmp / "text_encoder", safe_serialization=True)
            self.image_encoder.save_pretrained(tmp / "image_encoder", safe_serialization=True)
            self.tokenizer.save_pretrained(tmp / "tokenizer")
            write_bpe_files(self.tokenizer, tmp / "tokenizer")
            self.scheduler.save_pretrained(tmp / "scheduler")
            (tmp / "feature_extractor").mkdir()
            (tmp / "feature_extractor" / "preprocessor_config.json").write_text(
                json.dumps(self.clip_config.to_dict(), indent=2, sort_keys=True) + "\n"
            )
            if folder.exists():
                folder.rmdir()  # empty (checked above)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "ImageDreamPipeline":
        for module in (self.unet, self.vae, self.text_encoder, self.image_encoder):
            current = next(module.parameters())
            if device is not None and current.device != torch.device(device):
                module.to(device=device)
            if dtype is not None and current.dtype != dtype:
                module.to(dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    # ----------------------------------------------------------------------------------------- encoders
    @torch.no_grad()
    def encode_image_clip(self, image: np.ndarray) -> torch.Tensor:
        """image: [H,W,3] float in [0,1] -> penultimate CLIP hidden states [1, tokens, 1280]."""
        pixels = clip_preprocess((image * 255).astype(np.uint8), self.clip_config)  # truncation, as the reference
        enc = self.image_encoder
        out = enc(pixel_values=pixels.to(self.device, enc.dtype), output_hidden_states=True)
        assert len(out.hidden_states) == enc.config.num_hidden_layers + 1
        return out.hidden_states[-2].to(self.dtype)

    @torch.no_grad()
    def encode_image_latent(self, image: np.ndarray) -> torch.Tensor:
        """image: [H,W,3] float in [0,1] -> clean latent [1, 4, 32, 32] (posterior mean, scaled)."""
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(self.device, torch.float32)
        x = F.interpolate(x * 2 - 1, (IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
        # The reference samples the posterior from the global RNG; the mean keeps runs reproducible.
        latent = self.vae.encode(x.to(self.vae.dtype)).latent_dist.mean
        return (latent * self.vae.config.scaling_factor).to(self.dtype)

    @torch.no_grad()
    def encode_text(self, prompt: str) -> torch.Tensor:
        """prompt -> last hidden state [1, 77, context_dim] (padded to the tokenizer's max length)."""
        tok = self.tokenizer
        ids = tok([prompt], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        ids = ids.input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """latents: [N, 4, 32, 32] -> images [N, 256, 256, 3] float32 in [0, 1]."""
        x = self.vae.decode((latents / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
        return (x.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

    # --------------------------------------------------------------------------------------------- call
    @torch.no_grad()
    def __call__(
        self,
        image,
        prompt: str = "",
        negative_prompt: str = "",
        guidance_scale: float = 5.0,
        num_inference_steps: int = 30,
        elevation: float = 0.0,
        seed: int | None = None,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Generate the 4 views.

        image: PIL image or array [H,W,3|4] (uint8 or float in [0,1]; RGBA is composited on white),
        256² expected. Returns float32 [4, 256, 256, 3] in [0, 1]: azimuth 0/90/180/270 relative to the
        input, input view first. ``progress(done, total)`` is called after every denoising step.
        """
        if int(num_inference_steps) < 1:
            raise UserError(f"ImageDream needs at least 1 denoising step, got {num_inference_steps}")
        steps = int(num_inference_steps)
        rgb = image_on_white(image)
        prompt, negative_prompt = prompt or "", negative_prompt or ""
        device, dtype = self.device, self.dtype
        frames = NUM_VIEWS + 1  # 4 views + the reference (pixel-controller) slot
        cfg = guidance_scale > 1.0

        clip = self.encode_image_clip(rgb)  # [1, P, 1280]
        latent_ref = self.encode_image_latent(rgb)  # [1, 4, 32, 32]
        text = self.encode_text(prompt)  # [1, 77, C]
        cams = imagedream_cameras(elevation, NUM_VIEWS, extra_view=True).to(device, dtype)  # [5, 16]
        if cfg:
            text_neg = self.encode_text(negative_prompt)
            context = torch.cat([text_neg.expand(frames, -1, -1), text.expand(frames, -1, -1)])  # [10, 77, C]
            clip5 = clip.expand(frames, -1, -1)
            ip = torch.cat([torch.zeros_like(clip5), clip5])  # [10, P, 1280]
            ip_img = torch.cat([torch.zeros_like(latent_ref), latent_ref])  # [2, 4, 32, 32]
            camera = cams.repeat(2, 1)  # [10, 16]
        else:
            context, ip, ip_img, camera = text.expand(frames, -1, -1), clip.expand(frames, -1, -1), latent_ref, cams

        # Noise drawn on the CPU in fp32 so a seed gives the same start on every device.
        generator = torch.Generator("cpu")
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        size = IMAGE_SIZE // 8
        latents = torch.randn((frames, 4, size, size), generator=generator, dtype=torch.float32).to(device)
        latents = latents * self.scheduler.init_noise_sigma
        # Latents stay fp32 for the scheduler; only the UNet runs in the pipeline dtype.
        self.scheduler.set_timesteps(steps, device=device)
        timesteps = self.scheduler.timesteps
        for i, t in enumerate(timesteps):
            x = torch.cat([latents] * 2) if cfg else latents
            x = self.scheduler.scale_model_input(x, t).to(dtype)
            tt = torch.full((x.shape[0],), float(t), device=device, dtype=dtype)
            eps = self.unet(x, tt, context, num_frames=frames, camera=camera, ip=ip, ip_img=ip_img).float()
            if cfg:
                eps_uncond, eps_cond = eps.chunk(2)
                eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
            latents = self.scheduler.step(eps, t, latents, eta=0.0).prev_sample
            if progress is not None:
                progress(i + 1, len(timesteps))

        views = self.decode_latents(latents[:NUM_VIEWS])  # the reference slot is not decoded
        return np.ascontiguousarray(views[list(LGM_ORDER)])
