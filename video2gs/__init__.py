"""video2gs: a monocular video of an object -> a 4D sequence of 3D Gaussian splats."""

__version__ = "0.1.0"
