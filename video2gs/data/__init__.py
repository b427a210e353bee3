"""Synthetic 4D datasets with exact ground truth, and readers of our layout and the reference's tars.

Modules: :mod:`~video2gs.data.layout` (the on-disk layout of a clip and a dataset, read and write).
"""
