"""``video2gs view``: the sequence in the browser through a local viser server.

viser (the nerfstudio / gsplat viewer library) ships its web client inside its wheel, so this
works offline. The scene is the internal +Y-up world (``scene.set_up_direction("+y")``,
camera.VIEWER_UP) with the renderer's fovy; the first camera (:data:`START_VIEW`, through
:func:`video2gs.camera.viewer_camera`) looks at the front from above and to the right, so the input
camera -- the front camera of ``video2gs render``, drawn as a frustum -- is in sight. Controls in
the side panel: play/pause, the frame slider, speed, the ×3 toggle (when gaussians_x3/ exists),
background colour, the input camera's visibility, and the input frame of the same time.

Frames are loaded when first shown and kept in a bounded :class:`~video2gs.viewer.cache.FrameCache`,
so memory does not grow with the sequence and the first frame appears after one load.
"""

from __future__ import annotations

import base64
import contextlib
import math
import socket
import threading
import time

import numpy as np
import torch

from video2gs.camera import FOVY_DEG, RADIUS, opencv_pose, orbit_camera, viewer_camera
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians, quat_to_rotmat, rotmat_to_quat
from video2gs.progress import console
from video2gs.viewer.cache import FrameCache
from video2gs.viewer.source import Source

DEFAULT_PORT = 8080
SPEEDS = ("0.25", "0.5", "1", "2", "4")  # playback speed factors offered
FRUSTUM_SCALE = 0.12  # drawn size of the input camera's frustum (scene units)
# First camera (user elevation°, azimuth°, radius): a three-quarter view from above the front, so the
# input camera's frustum (on the front camera itself) is in sight beside the object.
START_VIEW = (20.0, 30.0, 2.4)


def splat_arrays(g: Gaussians) -> dict[str, np.ndarray]:
    """One frame [N,14] (internal frame) -> viser's arrays: centers [N,3], covariances [N,3,3]
    (R diag(σ²) Rᵀ), rgbs [N,3] in [0,1], opacities [N,1]; float32."""
    d = g.data.detach().to("cpu", torch.float32)
    rot = quat_to_rotmat(d[:, 7:11])  # [N,3,3]
    cov = rot @ torch.diag_embed(d[:, 4:7] ** 2) @ rot.transpose(1, 2)
    return {
        "centers": d[:, 0:3].numpy().copy(),
        "covariances": cov.numpy(),
        "rgbs": d[:, 11:14].clamp(0, 1).numpy().copy(),
        "opacities": d[:, 3:4].numpy().copy(),
    }


def _arrays_nbytes(arrays: dict[str, np.ndarray]) -> int:
    return sum(a.nbytes for a in arrays.values())


def port_is_free(host: str, port: int) -> bool:
    """True if a TCP server could bind ``host:port`` now."""
    with contextlib.closing(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class SequenceViewer:
    """A viser server showing a :class:`Source`. ``start()``, then ``url``; ``stop()`` ends it.

    ``port=None`` takes :data:`DEFAULT_PORT` or, when that is taken, the next free one above it
    (viser's own search); an explicit port that is taken is a UserError. ``port=0`` lets the
    system choose.
    """

    def __init__(
        self,
        source: Source,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        background: tuple[int, int, int] = (255, 255, 255),
        cache_frames: int = 32,
        cache_bytes: int = 512 << 20,
    ):
        self.source, self.host, self.requested_port = source, host, port
        self.background = tuple(int(c) for c in background)
        self.cache: FrameCache[dict] = FrameCache(self._load, _arrays_nbytes, max_items=cache_frames, max_bytes=cache_bytes)
        self.sequence = next(iter(source.sequences))
        self.index = 0
        self.playing = False
        self.speed = 1.0
        self.shown = 0  # frames sent to the browser so far
        self._server = None
        self._splats = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- data ------------------------------------------------------------------------------------
    def _load(self, key) -> dict:
        name, index = key
        return splat_arrays(self.source.sequences[name].load(index))

    def _input_html(self, index: int | None) -> str | None:
        """The input frame ``index`` as an <img> with a data: URL (composited on white, as the model
        saw it), or None. A data URL rather than viser's image element, whose blob URLs can be
        revoked while a quick succession of frames is still loading them."""
        if index is None:
            return None
        import cv2

        img = cv2.imread(str(self.source.inputs[index]), cv2.IMREAD_UNCHANGED)
        if img is None:
            return None
        if img.ndim == 3 and img.shape[2] == 4:
            a = img[:, :, 3:4].astype(np.float32) / 255.0
            img = (img[:, :, :3].astype(np.float32) * a + 255.0 * (1 - a)).round().astype(np.uint8)
        ok, png = cv2.imencode(".png", img)
        if not ok:
            return None
        data = base64.b64encode(png.tobytes()).decode("ascii")
        return (
            f'<div style="font-size:0.85em;margin-bottom:4px">Input frame {index + 1} (front camera)</div>'
            f'<img id="video2gs-input" data-index="{index}" src="data:image/png;base64,{data}" style="width:100%;max-width:256px">'
        )

    @property
    def frames(self) -> int:
        return len(self.source.sequences[self.sequence])

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else socket.gethostname()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        return self._server.get_port()

    # -- server ----------------------------------------------------------------------------------
    def start(self) -> "SequenceViewer":
        """Bind the server, build the scene and the panel, and show the first frame."""
        import viser

        port = DEFAULT_PORT if self.requested_port is None else self.requested_port
        if self.requested_port and not port_is_free(self.host, port):
            raise UserError(f"port {port} on {self.host} is in use (choose another --port, or leave it out to use a free one)")
        try:
            self._server = viser.ViserServer(host=self.host, port=port, label="video2gs", verbose=False)
        except OSError as exc:
            raise UserError(f"cannot serve on {self.host}:{port}: {exc.strerror or exc}") from exc
        if self.requested_port and self.port != port:
            self._server.stop()
            raise UserError(f"port {port} on {self.host} is in use (choose another --port, or leave it out to use a free one)")
        try:
            self._build()
            self.show(self.sequence, 0)
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._play_loop, name="video2gs-view-play", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
            self._server = None

    def __enter__(self) -> "SequenceViewer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _build(self) -> None:
        server = self._server
        gui, scene = server.gui, server.scene
        # Docked: the panel (and the input frame in it) sits beside the 3D view, not over it.
        gui.configure_theme(control_width="medium", show_logo=False, show_share_button=False)
        gui.main_panel.dock_right()
        scene.set_up_direction("+y")
        cam = viewer_camera(*START_VIEW)
        server.initial_camera.position = cam["position"]
        server.initial_camera.look_at = cam["look_at"]
        server.initial_camera.up = cam["up"]
        server.initial_camera.fov = math.radians(cam["fovy_deg"])
        server.initial_camera.near = cam["near"]
        server.initial_camera.far = cam["far"]
        self._set_background(self.background)

        self._play = gui.add_button("Play", hint="Play or pause the sequence")
        self._slider = gui.add_slider("Frame", min=0, max=max(self.frames - 1, 1), step=1, initial_value=0, disabled=self.frames < 2)
        self._speed = gui.add_dropdown("Speed", SPEEDS, initial_value="1")
        self._x3 = None
        if len(self.source.sequences) > 1:
            self._x3 = gui.add_checkbox("×3 interpolated", initial_value=False, hint=f"Show {list(self.source.sequences)[1]}/")
        self._bg = gui.add_rgb("Background", initial_value=self.background)
        self._time = gui.add_markdown("")
        self._input = None
        self._frustum = None
        self._input_shown = self.source.input_index(self.sequence, 0)
        first = self._input_html(self._input_shown)
        if first is not None:
            self._input = gui.add_html(first)
            # The input camera: the front camera the model saw the video from (wireframe: viser's
            # textured frustum reports NaN geometry in this version).
            rot, pos = opencv_pose(orbit_camera(0.0, 0.0, RADIUS))
            self._show_camera = gui.add_checkbox("Input camera", initial_value=True, hint="Show the input camera's frustum")
            self._frustum = scene.add_camera_frustum(
                "/input_camera", fov=math.radians(FOVY_DEG), aspect=1.0, scale=FRUSTUM_SCALE,
                wxyz=rotmat_to_quat(torch.from_numpy(rot)).numpy(), position=pos, color=(90, 90, 90),
            )

        @self._play.on_click
        def _(_event) -> None:
            self.set_playing(not self.playing)

        @self._slider.on_update
        def _(_event) -> None:
            if int(self._slider.value) != self.index:
                self._try(self.show, self.sequence, int(self._slider.value))

        @self._speed.on_update
        def _(_event) -> None:
            self.speed = float(self._speed.value)

        if self._x3 is not None:
            @self._x3.on_update
            def _(_event) -> None:
                self._try(self.set_sequence, list(self.source.sequences)[1 if self._x3.value else 0])

        if self._frustum is not None:
            @self._show_camera.on_update
            def _(_event) -> None:
                self._frustum.visible = bool(self._show_camera.value)

        @self._bg.on_update
        def _(_event) -> None:
            self._set_background(tuple(int(c) for c in self._bg.value))

    def _set_background(self, rgb: tuple[int, int, int]) -> None:
        self.background = rgb
        self._server.scene.set_background_image(np.full((4, 4, 3), rgb, dtype=np.uint8), format="png")

    # -- playback --------------------------------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        self.playing = bool(playing)
        self._play.label = "Pause" if self.playing else "Play"

    def set_sequence(self, name: str) -> None:
        """Switch to sequence ``name`` at the same time."""
        with self._lock:
            if name == self.sequence or name not in self.source.sequences:
                return
            t = self.index / self.source.sequences[self.sequence].fps
            self.sequence = name
            index = min(int(round(t * self.source.sequences[name].fps)), self.frames - 1)
            self._slider.max = max(self.frames - 1, 1)
            self._slider.disabled = self.frames < 2
            if self._x3 is not None:
                self._x3.value = name != next(iter(self.source.sequences))
            self.show(name, index)

    def _try(self, action, *args) -> bool:
        """Run a control's action; a frame that cannot be read stops playback with one warning line
        instead of a traceback from viser's callback thread."""
        try:
            action(*args)
            return True
        except UserError as exc:
            self.set_playing(False)
            console.print(f"[yellow]warning:[/] {exc}")
            return False

    def show(self, name: str, index: int) -> None:
        """Send frame ``index`` of sequence ``name`` (loaded now unless cached) and its input frame."""
        with self._lock:
            arrays = self.cache.get((name, index))
            if self._splats is None:
                self._splats = self._server.scene.add_gaussian_splats("/frame", **arrays)
            else:
                # One node whose buffer is replaced in one message: viser's path for per-frame updates.
                self._splats.set_gaussians(**arrays)
            self.sequence, self.index = name, index
            self.shown += 1
            if int(self._slider.value) != index:
                self._slider.value = index
            seq = self.source.sequences[name]
            self._time.content = f"frame {index + 1} / {len(seq)} · t = {index / seq.fps:.2f} s · {len(arrays['centers']):,} Gaussians"
            shown = self.source.input_index(name, index)
            if self._input is not None and shown != self._input_shown:
                html = self._input_html(shown)
                if html is not None:
                    self._input.content = html
                    self._input_shown = shown

    def _play_loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.01):
            now = time.perf_counter()
            if not self.playing or self.frames < 2:
                last = now
                continue
            step = 1.0 / (self.source.sequences[self.sequence].fps * self.speed)
            if now - last >= step:
                last = now
                self._try(self.show, self.sequence, (self.index + 1) % self.frames)
