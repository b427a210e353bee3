"""`video2gs view` without a browser: lazy bounded loading, ports, host binding, bad input, and the
conversions the viewer relies on (splat covariances, the front camera in OpenCV axes)."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from test_cli_render import assert_one_line_error, blob, make_sequence, run_cli
from video2gs.camera import opencv_pose, orbit_camera, viewer_camera
from video2gs.gaussians import Gaussians
from video2gs.sequence import write_frame
from video2gs.viewer import viser_app
from video2gs.viewer.source import Source
from video2gs.viewer.viser_app import SequenceViewer, splat_arrays


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":  # LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def test_first_frame_after_one_load_and_memory_bounded(tmp_path):
    small = Gaussians(blob(20).data)
    for t in range(300):
        write_frame(tmp_path / "long", t, small)
    viewer = SequenceViewer(Source.open(tmp_path / "long"), port=0, cache_frames=8).start()
    try:
        assert viewer.cache.loads == 1 and viewer.index == 0  # the first frame shows after one load
        for t in range(1, 40):
            viewer.show("gaussians", t)
        assert viewer.cache.loads == 40 and len(viewer.cache) <= 8
        viewer.show("gaussians", 39)  # still cached: no load
        assert viewer.cache.loads == 40
    finally:
        viewer.stop()


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc/net/tcp to see the bound address")
def test_binds_localhost_only_by_default(tmp_path):
    viewer = SequenceViewer(Source.open(make_sequence(tmp_path / "out", 1)), port=0).start()
    try:
        assert listening_addresses(viewer.port) == {"127.0.0.1"}
        assert viewer.url == f"http://127.0.0.1:{viewer.port}"
    finally:
        viewer.stop()


def test_cli_prints_url_and_stops(tmp_path):
    code, out, err = run_cli("view", make_sequence(tmp_path / "out", 2), "--port", "0", "--seconds", "0.3")
    assert code == 0, err
    assert "open http://127.0.0.1:" in out and "gaussians (2 frames at 10 fps)" in out and "stopped" in out


def test_taken_ports(tmp_path, monkeypatch):
    out = make_sequence(tmp_path / "out", 1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # An explicit port that is taken: one line, non-zero exit.
        assert_one_line_error(*run_cli("view", out, "--port", port, "--seconds", "0"), f"port {port}", "in use")
        # The default port taken: the next free one is used, and said so.
        monkeypatch.setattr(viser_app, "DEFAULT_PORT", port)
        code, stdout, err = run_cli("view", out, "--seconds", "0")
        assert code == 0, err
        assert f"port {port} is in use; using " in stdout


def test_nothing_to_show_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(*run_cli("view", empty, "--seconds", "0"), "no .ply or .splat files")
    (tmp_path / "zero.splat").write_bytes(b"")
    assert_one_line_error(*run_cli("view", tmp_path / "zero.splat", "--port", "0", "--seconds", "0"), "zero Gaussians")
    assert_one_line_error(*run_cli("view", empty, "--port", "70000"), "--port")


def test_splat_covariances():
    g = blob(1)
    half = math.sqrt(0.5)
    g.data[0, 4:7] = torch.tensor([0.1, 0.2, 0.3])
    g.data[0, 7:11] = torch.tensor([half, 0.0, 0.0, half])  # 90° about +Z: x -> y
    a = splat_arrays(g)
    assert np.allclose(a["covariances"][0], np.diag([0.04, 0.01, 0.09]), atol=1e-6)
    assert a["opacities"].shape == (1, 1) and a["rgbs"].shape == (1, 3)


def test_viewer_camera_is_the_render_front_view():
    cam = viewer_camera()
    assert cam["position"] == [0.0, 0.0, 1.5] and cam["up"] == [0.0, 1.0, 0.0] and cam["fovy_deg"] == 49.1
    rot, pos = opencv_pose(orbit_camera(0.0, 0.0))
    assert np.allclose(rot, np.diag([1.0, -1.0, -1.0])) and np.allclose(pos, [0, 0, 1.5])
    above = viewer_camera(elevation_deg=30.0)
    assert above["position"][1] > 0  # positive elevation = camera above, as everywhere


def test_input_frames_follow_time(tmp_path):
    from test_view_fixtures import make_output

    src = Source.open(make_output(tmp_path / "out", frames=3))
    viewer = SequenceViewer(src, port=0).start()
    try:
        assert 'data-index="0"' in viewer._input.content
        viewer.set_sequence("gaussians_x3")
        viewer.show("gaussians_x3", 5)  # t = 5/30 s -> key frame round(1.67) = 2
        assert 'data-index="2"' in viewer._input.content and viewer.sequence == "gaussians_x3"
    finally:
        viewer.stop()

