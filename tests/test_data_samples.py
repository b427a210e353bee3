"""Training samples from tars built here in the reference's layout (fixed_16_clip/<uid>.tar,
random_clip/<uid>.tar; ./<vid:03d>/img|mask|camera): view ids, pose normalisation, reconstruction
masking, interpolation inputs, augmentation switches, and DataLoader workers."""

import io
import tarfile

import cv2
import numpy as np
import pytest
import torch

from video2gs.camera import orbit_camera, plucker_rays
from video2gs.data.augment import grid_distortion
from video2gs.data.samples import L4GMDataset, SampleOptions, build_sample
from video2gs.data.stores import TarStore
from video2gs.errors import UserError
from video2gs.reconstructor import IMAGENET_MEAN, IMAGENET_STD

SIZE = 32
T = 6
FIXED_OFFSET = 10.0  # azimuth of the fixed tar's view 0: normalisation must remove it


def _colour(tar_kind: int, vid: int, t: int) -> np.ndarray:
    """A distinct flat RGB per (tar, view, frame), in BGR as cv2 writes it."""
    rgb = np.array([20 + 10 * t, 40 + 12 * vid, 60 + 100 * tar_kind], dtype=np.uint8)
    return rgb[::-1]


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _write_tar(path, kind: int, views: int, angles):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for vid in range(views):
            elev, azi = angles(vid)
            shape = (T,) if kind == 0 else (T, 1)  # the random tar stores [T,1] as the reference does
            _add(tar, f"./{vid:03d}/camera/elevation.npy", _npy(np.full(shape, elev)))
            _add(tar, f"./{vid:03d}/camera/rotation.npy", _npy(np.full(shape, azi)))
            for t in range(T):
                img = np.broadcast_to(_colour(kind, vid, t), (SIZE, SIZE, 3)).copy()
                _add(tar, f"./{vid:03d}/img/{t:03d}.jpg", cv2.imencode(".png", img)[1].tobytes())  # lossless bytes, .jpg name
                mask = np.full((SIZE, SIZE), 255, np.uint8)
                _add(tar, f"./{vid:03d}/mask/{t:03d}.png", cv2.imencode(".png", mask)[1].tobytes())


RANDOM_ANGLES = [(5.0 + vid, (37.0 * vid) % 360) for vid in range(8)]


@pytest.fixture()
def data_home(tmp_path):
    _write_tar(tmp_path / "fixed_16_clip" / "uid1.tar", 0, 16, lambda vid: (0.0, FIXED_OFFSET + 22.5 * vid))
    _write_tar(tmp_path / "random_clip" / "uid1.tar", 1, 8, lambda vid: RANDOM_ANGLES[vid])
    return tmp_path


def _opts(**kw):
    base = dict(num_frames=4, num_views=8, input_size=16, output_size=24, prob_grid_distortion=0.0)
    base.update(kw)
    return SampleOptions(**base)


def _rgb(sample, i):
    """Un-normalised input RGB of input image i, [3, H, W]."""
    x = sample["input"][i, :3]
    return x * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)


def test_view_ids_and_shapes(data_home):
    store = TarStore.from_reference(data_home, "uid1")
    assert store.fixed_ids == list(range(32, 48)) and store.random_ids == list(range(8)) and store.num_frames == T
    s = build_sample(store, _opts(), np.random.default_rng(0), training=False)
    assert s["view_ids"].tolist() == [32, 36, 40, 44, 0, 1, 2, 3]  # eval: azimuth 0/90/180/270, then random
    assert s["input"].shape == (16, 9, 16, 16) and s["images_output"].shape == (32, 3, 24, 24)
    assert s["masks_output"].shape == (32, 1, 24, 24) and s["c2w"].shape == (32, 4, 4)
    assert s["cam_view"].shape == (32, 4, 4) and s["cam_pos"].shape == (32, 3)
    # The random tar's ids 0..7 and the fixed tar's 32..47 read from the right tar (colour channel B).
    out = s["images_output"]
    assert out[0, 2].mean() * 255 == pytest.approx(60, abs=1)  # fixed tar
    assert out[4, 2].mean() * 255 == pytest.approx(160, abs=1)  # random tar


def test_pose_normalisation(data_home):
    """Input view 0 of frame 0 becomes orbit_camera(0, 0, 1.5); the others keep their relative pose:
    fixed view at azimuth a -> orbit_camera(0, a - a0); random view (elevation e, Blender sign) ->
    orbit_camera(-e, a - a0)."""
    store = TarStore.from_reference(data_home, "uid1")
    s = build_sample(store, _opts(), np.random.default_rng(0), training=False)
    c2w = s["c2w"].reshape(4, 8, 4, 4)
    for t in range(4):
        np.testing.assert_allclose(c2w[t, 0].numpy(), orbit_camera(0, 0, 1.5), atol=1e-5)
        for k, azi in enumerate([0, 90, 180, 270]):
            np.testing.assert_allclose(c2w[t, k].numpy(), orbit_camera(0, azi, 1.5), atol=1e-5)
        for j in range(4):
            elev, azi = RANDOM_ANGLES[j]
            np.testing.assert_allclose(c2w[t, 4 + j].numpy(), orbit_camera(-elev, azi - FIXED_OFFSET, 1.5), atol=1e-5)
            assert c2w[t, 4 + j, 1, 3] > 0  # positive Blender elevation = camera above


def test_pose_normalisation_shuffled_inputs(data_home):
    """Training draws 4 distinct fixed views; the first one, whatever it is, becomes the front camera."""
    store = TarStore.from_reference(data_home, "uid1")
    for seed in range(3):
        s = build_sample(store, _opts(), np.random.default_rng(seed), training=True)
        ids = s["view_ids"].tolist()
        assert len(set(ids[:4])) == 4 and all(32 <= v < 48 for v in ids[:4]) and all(v < 32 for v in ids[4:])
        np.testing.assert_allclose(s["c2w"][0].numpy(), orbit_camera(0, 0, 1.5), atol=1e-5)
        rel = 22.5 * ((ids[1] - ids[0]) % 16)
        np.testing.assert_allclose(s["c2w"][1].numpy(), orbit_camera(0, rel, 1.5), atol=1e-5)


def test_reconstruction_masking(data_home):
    """Views 1..3 of frames >= 1: frame 0's images and poses; view 0 and supervision stay per frame."""
    store = TarStore.from_reference(data_home, "uid1")
    s = build_sample(store, _opts(), np.random.default_rng(0), training=False)
    red = [[float(_rgb(s, 4 * t + k)[0].mean() * 255) for k in range(4)] for t in range(4)]
    for t in range(4):
        assert red[t][0] == pytest.approx(20 + 10 * t, abs=0.5)  # view 0: the real frame t
        for k in (1, 2, 3):
            assert red[t][k] == pytest.approx(20, abs=0.5)  # frame 0's image
    c_in = s["c2w_input"].reshape(4, 4, 4, 4)
    torch.testing.assert_close(c_in[3, 1:], c_in[0, 1:])
    # The rays in the network input are those of the masked input poses.
    rays = s["input"].reshape(4, 4, 9, 16, 16)[..., 3:, :, :]
    torch.testing.assert_close(rays[2, 1], plucker_rays(c_in[0, 1], 16, 16)[0])
    # Supervision images are not masked: view 1 at frame 3 shows frame 3.
    sup = s["images_output"].reshape(4, 8, 3, 24, 24)
    assert float(sup[3, 1, 0].mean() * 255) == pytest.approx(50, abs=0.5)


def test_interpolation_inputs(data_home):
    """interp: frames 1, 2 (all 4 views) are lerps of frames 0 and 3 at 1/3 and 2/3; no view masking."""
    store = TarStore.from_reference(data_home, "uid1")
    s = build_sample(store, SampleOptions.interp(num_views=8, input_size=16, output_size=24), np.random.default_rng(3), training=False)
    f0 = int(s["frame_ids"][0])
    assert s["frame_ids"].tolist() == list(range(f0, f0 + 4)) and 0 <= f0 < T - 4 + 1
    red = np.array([[float(_rgb(s, 4 * t + k)[0].mean() * 255) for k in range(4)] for t in range(4)])
    a, b = 20 + 10 * f0, 20 + 10 * (f0 + 3)
    np.testing.assert_allclose(red[:, 0], [a, a + (b - a) / 3, a + 2 * (b - a) / 3, b], atol=0.5)
    np.testing.assert_allclose(red[:, 1], red[:, 0], atol=0.5)  # every view interpolated alike


def test_augmentations_follow_their_probabilities(data_home):
    store = TarStore.from_reference(data_home, "uid1")
    plain = build_sample(store, _opts(), np.random.default_rng(5), training=True)
    jit = build_sample(store, _opts(prob_cam_jitter=1.0), np.random.default_rng(5), training=True)
    c_plain, c_jit = plain["c2w_input"].reshape(4, 4, 4, 4), jit["c2w_input"].reshape(4, 4, 4, 4)
    torch.testing.assert_close(c_jit[:, 0], c_plain[:, 0])  # view 0 is never jittered
    assert (c_jit[0, 1:] - c_plain[0, 1:]).abs().max() > 1e-3
    torch.testing.assert_close(c_jit[0, 1:, :3, 3].norm(dim=-1), torch.full((3,), 1.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(jit["c2w"], plain["c2w"])  # supervision poses untouched
    # Evaluation never augments, whatever the probabilities.
    ev = build_sample(store, _opts(prob_cam_jitter=1.0, prob_grid_distortion=1.0), np.random.default_rng(5), training=False)
    ev0 = build_sample(store, _opts(), np.random.default_rng(5), training=False)
    torch.testing.assert_close(ev["input"], ev0["input"])


def test_grid_distortion():
    img = torch.rand(2, 3, 20, 24)
    rng = np.random.default_rng(0)
    torch.testing.assert_close(grid_distortion(img, rng, strength=0.0), img, atol=1e-5, rtol=0)
    warped = grid_distortion(img, rng, strength=0.5)
    assert warped.shape == img.shape and (warped - img).abs().mean() > 1e-3
    flat = torch.full((1, 3, 20, 24), 0.25)
    torch.testing.assert_close(grid_distortion(flat, rng), flat)  # a warp moves pixels, never invents values


def test_dataset_with_workers(data_home):
    ds = L4GMDataset.from_reference(data_home, ["uid1", "uid1"], options=_opts(), seed=7)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batch = next(iter(loader))
    assert batch["input"].shape == (2, 16, 9, 16, 16)
    again = ds[1]
    torch.testing.assert_close(batch["input"][1], again["input"])  # same (seed, epoch, index) -> same sample
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["view_ids"], again["view_ids"]) or not torch.equal(ds[1]["input"], again["input"])


def test_missing_tar_is_clear(data_home):
    with pytest.raises(UserError, match="no tar for fixed_16_clip/nope"):
        TarStore.from_reference(data_home, "nope")
    (data_home / "random_clip" / "uid1.tar").unlink()
    with pytest.raises(UserError, match="no tar for random_clip/uid1"):
        TarStore.from_reference(data_home, "uid1")


def test_recolour_fixes_white_and_keeps_composites_exact():
    """A colour map that fixes white keeps 'object composited on white' true for the new colours
    (M(a·c + (1-a)·1) = a·Mc + (1-a)·1), so the masks stay right; and it does change colours."""
    from video2gs.data.augment import recolour, recolour_matrix

    rng = np.random.default_rng(0)
    mats = [recolour_matrix(rng) for _ in range(20)]
    for M in mats:
        torch.testing.assert_close(M @ torch.ones(3), torch.ones(3), atol=1e-6, rtol=0)
    assert max(float((M - torch.eye(3)).abs().max()) for M in mats) > 0.3
    colour = torch.tensor([0.8, 0.3, 0.2]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    alpha = torch.linspace(0, 1, 16).view(1, 1, 4, 4)
    composite = alpha * colour + (1 - alpha)
    M = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])  # rows sum to 1, inside [0, 1]
    torch.testing.assert_close(recolour(composite, M), alpha * recolour(colour.clone(), M) + (1 - alpha))


def test_recolour_applies_one_map_to_every_image_of_a_sample(data_home):
    store = TarStore.from_reference(data_home, "uid1")
    plain = build_sample(store, _opts(), np.random.default_rng(3), training=True)
    recol = build_sample(store, _opts(prob_recolour=1.0), np.random.default_rng(3), training=True)
    a, b = plain["images_output"], recol["images_output"]  # [N, 3, H, W]
    assert (a - b).abs().max() > 0.05
    torch.testing.assert_close(recol["masks_output"], plain["masks_output"])
    # one linear map for all N images: least squares on every pixel fits with a tiny residual
    x, y = a.permute(0, 2, 3, 1).reshape(-1, 3).double(), b.permute(0, 2, 3, 1).reshape(-1, 3).double()
    inside = (y > 0.01).all(1) & (y < 0.99).all(1)  # away from the clip to [0, 1]
    sol = torch.linalg.lstsq(x[inside], y[inside]).solution
    assert float((x[inside] @ sol - y[inside]).abs().max()) < 1e-3
    # evaluation never recolours
    ev = build_sample(store, _opts(prob_recolour=1.0), np.random.default_rng(3), training=False)
    ev0 = build_sample(store, _opts(), np.random.default_rng(3), training=False)
    torch.testing.assert_close(ev["images_output"], ev0["images_output"])


def test_random_start_windows_cover_the_clip(data_home):
    store = TarStore.from_reference(data_home, "uid1")
    T = 2
    starts = {int(build_sample(store, _opts(num_frames=T, random_start=True), np.random.default_rng(s), training=True)
                  ["frame_ids"][0]) for s in range(40)}
    assert starts == set(range(store.num_frames - T + 1))
    fixed = build_sample(store, _opts(num_frames=T), np.random.default_rng(1), training=True)["frame_ids"].tolist()
    ev = build_sample(store, _opts(num_frames=T, random_start=True), np.random.default_rng(1), training=False)
    assert fixed == ev["frame_ids"].tolist() == list(range(T))
