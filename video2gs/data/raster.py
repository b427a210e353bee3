"""Mesh images from a real OpenGL rasterizer (moderngl, headless EGL; Mesa llvmpipe on a CPU).

Used for mesh sources of ``data make`` so that their images do not come from our own splat
renderer: the ground-truth Gaussians rendered by :func:`video2gs.render.render` at the same
cameras must match these images, which cross-checks both camera paths.

Cameras come from :class:`video2gs.camera.Cameras` (OpenGL c2w, fovy, near, far): the view
matrix is ``inverse(c2w)``, the projection the standard OpenGL perspective of that fovy, so
pixel (row i, col j) samples its centre (i + 0.5, j + 0.5) as ``camera.get_rays`` does.
Shading is unlit (texture or vertex colour only, both faces drawn), 8× multisampled; alpha is the
covered fraction of each pixel. System requirements: libEGL and Mesa's EGL/DRI drivers
(Debian: ``libegl1 libegl-mesa0 libgl1-mesa-dri``).
"""

from __future__ import annotations

import math

import numpy as np

from video2gs.camera import Cameras
from video2gs.data.mesh import TexturedMesh
from video2gs.errors import UserError

SAMPLES = 8

_VERTEX = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
in vec2 in_uv;
in vec3 in_rgb;
out vec2 uv;
out vec3 rgb;
void main() {
    gl_Position = mvp * vec4(in_pos, 1.0);
    uv = in_uv;
    rgb = in_rgb;
}
"""

_FRAGMENT = """
#version 330
uniform sampler2D tex;
in vec2 uv;
in vec3 rgb;
out vec4 colour;
void main() {
    colour = vec4(texture(tex, uv).rgb * rgb, 1.0);
}
"""


def gl_projection(fovy_deg: float, near: float, far: float) -> np.ndarray:
    """OpenGL perspective [4,4] (column-vector convention), square aspect."""
    f = 1.0 / math.tan(math.radians(fovy_deg) / 2)
    p = np.zeros((4, 4))
    p[0, 0] = p[1, 1] = f
    p[2, 2] = (far + near) / (near - far)
    p[2, 3] = 2 * far * near / (near - far)
    p[3, 2] = -1.0
    return p


class MeshRasterizer:
    """Render one :class:`TexturedMesh` frame from many cameras at ``size``² pixels.

    >>> with MeshRasterizer(256) as r:                       # doctest: +SKIP
    ...     rgb, alpha = r.render(mesh, frame=0, cameras=cams)  # [V,H,W,3] on white, [V,H,W]
    """

    def __init__(self, size: int, samples: int = SAMPLES):
        try:
            import moderngl
        except ImportError as exc:
            raise UserError("mesh sources need moderngl", hint="pip install moderngl") from exc
        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # noqa: BLE001 - glcontext reports missing libraries in many ways
            raise UserError(
                f"cannot create a headless OpenGL context ({exc})",
                hint="install libEGL and Mesa (Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)",
            ) from exc
        self.size = int(size)
        self.prog = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        samples = min(samples, self.ctx.max_samples)
        self.fbo_ms = self.ctx.framebuffer(
            color_attachments=[self.ctx.renderbuffer((size, size), 4, samples=samples, dtype="f4")],
            depth_attachment=self.ctx.depth_renderbuffer((size, size), samples=samples),
        )
        self.fbo = self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer((size, size), 4, dtype="f4")])
        self._texture_key = None
        self._texture = None

    def __enter__(self) -> "MeshRasterizer":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None

    def _bind_texture(self, mesh: TexturedMesh):
        key = id(mesh.texture)
        if key != self._texture_key:
            if self._texture is not None:
                self._texture.release()
            image = mesh.texture if mesh.texture is not None else np.full((1, 1, 3), 255, np.uint8)
            h, w = image.shape[:2]
            self._texture = self.ctx.texture((w, h), 3, np.ascontiguousarray(image).tobytes())
            self._texture.repeat_x = self._texture.repeat_y = True
            import moderngl

            self._texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            self._texture_key = key
        self._texture.use(0)

    def render(self, mesh: TexturedMesh, frame: int, cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
        """Images of ``mesh.vertices[frame]``: rgb [V,H,W,3] float32 composited on white, alpha [V,H,W] float32."""
        import moderngl

        faces = mesh.faces
        pos = mesh.vertices[frame][faces].reshape(-1, 3).astype(np.float32)  # un-indexed: [3K,3]
        if mesh.texture is not None:
            uv = mesh.face_uv.reshape(-1, 2).astype(np.float32)
            rgb = np.ones_like(pos)
        else:
            uv = np.zeros((len(pos), 2), np.float32)
            rgb = mesh.corner_rgb.reshape(-1, 3).astype(np.float32)
        data = np.concatenate([pos, uv, rgb], axis=1).astype(np.float32)
        vbo = self.ctx.buffer(data.tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 2f 3f", "in_pos", "in_uv", "in_rgb")])
        self._bind_texture(mesh)
        self.prog["tex"].value = 0
        proj = gl_projection(cameras.fovy_deg, cameras.near, cameras.far)
        size = self.size
        out_rgb = np.empty((len(cameras), size, size, 3), np.float32)
        out_alpha = np.empty((len(cameras), size, size), np.float32)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE)
        try:
            for i, c2w in enumerate(cameras.c2w.numpy().astype(np.float64)):
                mvp = proj @ np.linalg.inv(c2w)
                self.prog["mvp"].write(mvp.T.astype("f4").tobytes())  # GLSL wants column-major
                self.fbo_ms.use()
                self.fbo_ms.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                vao.render(moderngl.TRIANGLES)
                self.ctx.copy_framebuffer(self.fbo, self.fbo_ms)  # resolve the multisamples
                img = np.frombuffer(self.fbo.read(components=4, dtype="f4"), np.float32).reshape(size, size, 4)
                img = img[::-1]  # GL rows start at the bottom
                a = img[..., 3]
                # Resolved colour is coverage-weighted over a transparent black clear: premultiplied.
                out_rgb[i] = np.clip(img[..., :3] + (1.0 - a[..., None]), 0.0, 1.0)
                out_alpha[i] = np.clip(a, 0.0, 1.0)
        finally:
            vao.release()
            vbo.release()
        return out_rgb, out_alpha
