"""Viewers of a sequence: the interactive viser server (``video2gs view``) and the static web page
with Spark (``video2gs export --web``). Both read through :mod:`video2gs.sequence` and take their
camera and frame conventions from :mod:`video2gs.camera` and :mod:`video2gs.formats`."""
