"""L4GM / LGM network configurations as plain data.

A config fixes everything that decides the state-dict layout (channels, which blocks carry
attention, temporal attention on/off) plus the input and splat-map sizes and the legacy rotation
switch. The number of frames T is *not* part of a config: the network takes it from its input.

Named configs (``docs/l4gm.md`` §2.2):

* ``big``   -- the released L4GM recon/interp model (LGM ``big`` + temporal attention), 256 -> 128².
* ``small`` -- L4GM ``lrm`` = LGM ``small`` channels + temporal attention, 256 -> 64².
* ``tiny``  -- LGM ``tiny`` channels + temporal attention (not released; for tests and ablations).
* ``demo``  -- for a model trained on a CPU and bundled in the package (issue 12): ``tiny``'s
  five levels at narrower widths (9.85 M parameters, 19.7 MB in fp16), 128 -> 32².

Every named config takes overrides, e.g. ``get_config("big", use_temp_attn=False)`` is plain LGM big.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from video2gs.errors import UserError

IN_CHANNELS = 9  # RGB (ImageNet-normalised) + Plücker (6)
OUT_CHANNELS = 14  # xyz, opacity, scale (3), quaternion (4), rgb (3)
NORM_GROUPS = 32
ROT_NORMS = ("quat", "gaussians")


@dataclass(frozen=True)
class L4GMConfig:
    """Architecture of one L4GM/LGM network.

    ``up_attention`` may be longer than ``up_channels`` (LGM ``tiny`` lists 4 flags for 3 up
    blocks; the reference zips them), the extra flags are dropped. ``rot_norm`` selects the
    quaternion normalisation: ``"quat"`` (over the 4 components, correct) or ``"gaussians"``
    (over the Gaussian axis: the bug the old LGM ``model.safetensors``/``model_fp16.safetensors``
    were trained with).
    """

    input_size: int = 256
    down_channels: tuple[int, ...] = (64, 128, 256, 512, 1024, 1024)
    down_attention: tuple[bool, ...] = (False, False, False, True, True, True)
    mid_attention: bool = True
    up_channels: tuple[int, ...] = (1024, 1024, 512, 256, 128)
    up_attention: tuple[bool, ...] = (True, True, True, False, False)
    splat_size: int = 128
    num_input_views: int = 4
    layers_per_block: int = 2
    attention_heads: int = 16
    use_temp_attn: bool = True
    rot_norm: str = "quat"
    name: str = field(default="custom", compare=False)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        set_("down_channels", tuple(int(c) for c in self.down_channels))
        set_("up_channels", tuple(int(c) for c in self.up_channels))
        set_("down_attention", tuple(bool(a) for a in self.down_attention))
        up_attn = tuple(bool(a) for a in self.up_attention)
        if len(up_attn) < len(self.up_channels):
            raise UserError(f"L4GM config: up_attention has {len(up_attn)} flags for {len(self.up_channels)} up blocks")
        set_("up_attention", up_attn[: len(self.up_channels)])
        for k in ("input_size", "splat_size", "num_input_views", "layers_per_block", "attention_heads"):
            set_(k, int(getattr(self, k)))
        set_("mid_attention", bool(self.mid_attention))
        set_("use_temp_attn", bool(self.use_temp_attn))
        self._validate()

    # -- checks --------------------------------------------------------------------------------
    def _validate(self) -> None:
        def bad(msg: str):
            raise UserError(f"L4GM config '{self.name}': {msg}")

        nd, nu = len(self.down_channels), len(self.up_channels)
        if nd < 1 or nu < 1:
            bad("needs at least one down and one up block")
        if len(self.down_attention) != nd:
            bad(f"down_attention has {len(self.down_attention)} flags for {nd} down blocks")
        if self.rot_norm not in ROT_NORMS:
            bad(f"rot_norm must be one of {ROT_NORMS}, got {self.rot_norm!r}")
        if self.layers_per_block < 1 or self.num_input_views < 1 or self.attention_heads < 1:
            bad("layers_per_block, num_input_views and attention_heads must be >= 1")
        for c in (*self.down_channels, *self.up_channels):
            if c <= 0 or c % NORM_GROUPS:
                bad(f"every channel count must be a positive multiple of {NORM_GROUPS} (GroupNorm), got {c}")
        for c in self.attention_channels():
            if c % self.attention_heads:
                bad(f"attention channels {c} are not divisible by {self.attention_heads} heads")
        down_factor = 2 ** (nd - 1)
        if self.input_size <= 0 or self.input_size % down_factor:
            bad(f"input_size {self.input_size} is not divisible by {down_factor} ({nd - 1} downsamplings)")
        expected = self.input_size // down_factor * 2 ** (nu - 1)
        if self.splat_size != expected:
            bad(f"splat_size must be {expected} for input_size {self.input_size}, got {self.splat_size}")
        if self.num_unused_skips < 0:
            bad(f"the up blocks consume {self.num_skips_consumed} skips but the encoder pushes only {self.num_skips_pushed}")
        # Up block i's first resnet takes [x, skip] sized cin + cout, so the skip it pops (the output
        # of down block nd-1-i) must have cout channels: up channels mirror the down channels.
        for i, c in enumerate(self.up_channels):
            if i < nd and self.down_channels[nd - 1 - i] != c:
                bad(
                    f"up_channels[{i}] = {c} must equal down_channels[{nd - 1 - i}] = {self.down_channels[nd - 1 - i]} "
                    "(the skip it concatenates)"
                )

    # -- derived quantities --------------------------------------------------------------------
    def attention_channels(self) -> list[int]:
        """Channel count of every MV attention module, in module order (down, mid, up)."""
        out = [c for c, a in zip(self.down_channels, self.down_attention) for _ in range(self.layers_per_block) if a]
        if self.mid_attention:
            out.append(self.down_channels[-1])
        out += [c for c, a in zip(self.up_channels, self.up_attention) for _ in range(self.layers_per_block + 1) if a]
        return out

    @property
    def num_skips_pushed(self) -> int:
        """conv_in + every down resnet (+ attention) + every downsample."""
        return 1 + len(self.down_channels) * self.layers_per_block + len(self.down_channels) - 1

    @property
    def num_skips_consumed(self) -> int:
        return len(self.up_channels) * (self.layers_per_block + 1)

    @property
    def num_unused_skips(self) -> int:
        """The earliest encoder outputs no up block ever reads (3 in ``big``)."""
        return self.num_skips_pushed - self.num_skips_consumed

    @property
    def gaussians_per_frame(self) -> int:
        return self.num_input_views * self.splat_size**2

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict (lists, not tuples); ``from_dict(to_dict())`` round-trips."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "L4GMConfig":
        """Build from a dict; keys this class does not know (e.g. the reference's training
        ``Options`` such as ``lr`` or ``num_frames``, or a model card's ``tensors``) are ignored.

        ``{"arch": "big", "use_temp_attn": false, ...}`` (the model-card form) starts from the
        named config and applies the other fields as overrides.
        """
        if not isinstance(d, dict):
            raise UserError(f"L4GM config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        if "rot_norm_dim" in d and "rot_norm" not in d:  # the spelling used in docs/l4gm.md §7
            d["rot_norm"] = d.pop("rot_norm_dim")
        fields = {k: v for k, v in d.items() if k in known}
        if "arch" in d:
            base = get_config(str(d["arch"]))
            return base.replace(**fields) if fields else base
        return cls(**fields)

    def replace(self, **changes) -> "L4GMConfig":
        return dataclasses.replace(self, **changes)


_BIG = L4GMConfig(name="big")
_SMALL = L4GMConfig(
    up_channels=(1024, 1024, 512, 256), up_attention=(True, True, True, False), splat_size=64, name="small"
)
_TINY = L4GMConfig(
    down_channels=(32, 64, 128, 256, 512),
    down_attention=(False, False, False, False, True),
    up_channels=(512, 256, 128),
    up_attention=(True, False, False),
    splat_size=64,
    name="tiny",
)
# Sized for a CPU-trained model shipped in the package: under 10 M parameters so fp16
# weights stay below 20 MB; the widths of the two finest levels (where the compute is) are tiny's.
_DEMO = _TINY.replace(
    input_size=128,
    down_channels=(32, 64, 96, 128, 160),
    down_attention=(False, False, False, True, True),
    up_channels=(160, 128, 96),
    up_attention=(True, True, False),
    splat_size=32,
    name="demo",
)
CONFIGS: dict[str, L4GMConfig] = {
    "big": _BIG, "small": _SMALL, "lrm": _SMALL.replace(name="lrm"), "tiny": _TINY, "demo": _DEMO,
}


def get_config(name: str, **overrides) -> L4GMConfig:
    """A named config (``big``, ``small``/``lrm``, ``tiny``, ``demo``) with optional field overrides."""
    try:
        base = CONFIGS[name]
    except KeyError:
        raise UserError(f"unknown L4GM config {name!r}; choose one of {', '.join(CONFIGS)}") from None
    return base.replace(**overrides) if overrides else base


def resolve_config(config: "str | dict | L4GMConfig") -> L4GMConfig:
    """Accept a config name, a dict (``from_dict``) or a config."""
    if isinstance(config, L4GMConfig):
        return config
    if isinstance(config, str):
        return get_config(config)
    if isinstance(config, dict):
        return L4GMConfig.from_dict(config)
    raise UserError(f"cannot use {type(config).__name__} as an L4GM config")


# -- analytic cost -----------------------------------------------------------------------------------
def forward_flops(config: L4GMConfig, num_frames: int, batch: int = 1) -> dict[str, float]:
    """FLOPs (2 x multiply-adds) of one forward for ``batch`` x ``num_frames`` x V images.

    Counts convolutions (incl. shortcuts, down/upsample convs, conv_out and the 1x1 ``conv``),
    attention projections (qkv + proj) and attention scores (q·kᵀ and p·v). Norms, activations,
    softmax and reshapes are ignored (memory-bound, < 1 % of the FLOPs).
    Returns ``{"conv", "attn_proj", "attn_scores", "total"}``.
    """
    cfg, V = config, config.num_input_views
    images = batch * num_frames * V
    conv = proj = scores = 0.0

    def conv_f(cin: int, cout: int, k: int, side: int) -> float:
        return 2.0 * cin * cout * k * k * side * side * images

    def attn_f(c: int, side: int) -> tuple[float, float]:
        tokens = images * side * side  # every pixel of every image is one token, in both attentions
        p = 2.0 * tokens * c * 4 * c  # qkv (3C) + proj (C)
        mv = 2.0 * 2 * (batch * num_frames) * (V * side * side) ** 2 * c
        tp = 2.0 * 2 * (batch * V) * (num_frames * side * side) ** 2 * c if cfg.use_temp_attn else 0.0
        n = 2 if cfg.use_temp_attn else 1
        return n * p, mv + tp

    def resnet_f(cin: int, cout: int, side: int) -> float:
        f = conv_f(cin, cout, 3, side) + conv_f(cout, cout, 3, side)
        return f + (conv_f(cin, cout, 1, side) if cin != cout else 0.0)

    side = cfg.input_size
    conv += conv_f(IN_CHANNELS, cfg.down_channels[0], 3, side)
    cout = cfg.down_channels[0]
    for i, (c, has_attn) in enumerate(zip(cfg.down_channels, cfg.down_attention)):
        for j in range(cfg.layers_per_block):
            conv += resnet_f(cout if j == 0 else c, c, side)
            if has_attn:
                p, s = attn_f(c, side)
                proj, scores = proj + p, scores + s
        cout = c
        if i < len(cfg.down_channels) - 1:
            side //= 2
            conv += conv_f(c, c, 3, side)
    c = cfg.down_channels[-1]
    conv += 2 * resnet_f(c, c, side)
    if cfg.mid_attention:
        p, s = attn_f(c, side)
        proj, scores = proj + p, scores + s
    cout = cfg.up_channels[0]
    for i, (c, has_attn) in enumerate(zip(cfg.up_channels, cfg.up_attention)):
        cin, cskip = cout, cfg.down_channels[max(-2 - i, -len(cfg.down_channels))]
        for j in range(cfg.layers_per_block + 1):
            rin = (cin if j == 0 else c) + (cskip if j == cfg.layers_per_block else c)
            conv += resnet_f(rin, c, side)
            if has_attn:
                p, s = attn_f(c, side)
                proj, scores = proj + p, scores + s
        cout = c
        if i < len(cfg.up_channels) - 1:
            side *= 2
            conv += conv_f(c, c, 3, side)
    conv += conv_f(cfg.up_channels[-1], OUT_CHANNELS, 3, side) + conv_f(OUT_CHANNELS, OUT_CHANNELS, 1, side)
    return {"conv": conv, "attn_proj": proj, "attn_scores": scores, "total": conv + proj + scores}


def describe(config: L4GMConfig) -> str:
    """One line: name, channels, temporal flag."""
    kind = "L4GM" if config.use_temp_attn else "LGM"
    return (
        f"{kind} '{config.name}' (down {list(config.down_channels)}, up {list(config.up_channels)}, "
        f"{config.input_size}² -> {config.splat_size}², rot_norm {config.rot_norm})"
    )

