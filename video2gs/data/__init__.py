"""Synthetic 4D datasets with exact ground truth, and the training samples built from them.

Who owns what:

* :mod:`~video2gs.data.layout` -- the on-disk layout of a clip and a dataset (read and write; the
  reading API ``open_clip`` is what ``evaluate`` and the readers use).
* :mod:`~video2gs.data.make` -- ``data make``: plans clips, builds frames, renders, writes atomically.
* :mod:`~video2gs.data.sources` -- what an object file is, its licence, loading and normalisation.
* :mod:`~video2gs.data.motions` -- procedural motions and their Jacobians (means and covariances).
* :mod:`~video2gs.data.md2` -- the Quake-2 MD2 reader; :mod:`~video2gs.data.mesh` -- textured meshes
  (trimesh loading) and surface-sampled ground-truth Gaussians; :mod:`~video2gs.data.raster` -- the
  OpenGL mesh rasterizer (moderngl, headless EGL).
* :mod:`~video2gs.data.stores` -- views of one animation from our clips or the reference's tars;
  :mod:`~video2gs.data.samples` -- the reference's training samples and the torch Dataset;
  :mod:`~video2gs.data.augment` -- grid distortion.
* :mod:`~video2gs.data.preview` -- contact sheets (views x frames, with masks).

Camera conventions are not here: every pose goes through :mod:`video2gs.camera` (``user_orbit``
for the files' Blender-sign elevation, ``front_normalisation``, ``orbit_jitter``).
"""
