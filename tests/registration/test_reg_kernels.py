"""numba kernels against small numpy references."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from igrt.geometry import Volume
from igrt.registration import _kernels as K
from igrt.registration.metrics import Evaluator
from igrt.registration.params import matrix_and_derivatives, to_transform
from igrt.registration.pyramid import halve
from igrt.registration.sampling import Samples, index_map


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    arr = ndimage.gaussian_filter(rng.normal(size=(20, 22, 24)), 2.0).astype(np.float32) * 100
    moving = Volume(arr, (-30.0, -35.0, -25.0), (2.5, 3.0, 2.5))
    pts = rng.uniform(-15, 15, size=(500, 3)).astype(np.float32)
    fvals = rng.normal(size=500).astype(np.float32)
    wts = rng.uniform(0.2, 1.0, 500).astype(np.float32)
    centre = np.array([2.0, -3.0, 1.0])
    p = np.array([1.5, -2.0, 0.7, 0.03, -0.02, 0.05])
    return moving, pts, fvals, wts, centre, p


def _moving_values(moving, pts, p, centre):
    y = to_transform(p, centre).apply(pts.astype(float))
    ijk = moving.to_index(y)
    return ndimage.map_coordinates(moving.array.astype(float), ijk[:, ::-1].T, order=1, mode="nearest")


def test_gn_accumulate_matches_numpy_reference():
    moving, pts, fvals, wts, centre, p = _setup()
    m, dr = matrix_and_derivatives(p, centre)
    acc = K.gn_accumulate(pts, fvals, wts, moving.array, index_map(moving), m, dr, centre, 7).sum(axis=0)
    mv = _moving_values(moving, pts, p, centre)
    eps = 1e-4
    jac = np.stack([(_moving_values(moving, pts, p + eps * e, centre) - _moving_values(moving, pts, p - eps * e, centre))
                    / (2 * eps) for e in np.eye(6)], axis=1)
    w = wts.astype(float)
    assert acc[K.GN_COUNT] == 500
    np.testing.assert_allclose(acc[K.GN_SM], (w * mv).sum(), rtol=1e-4)
    np.testing.assert_allclose(acc[K.GN_SFM], (w * fvals * mv).sum(), rtol=1e-4)
    terms = w[:, None] * mv[:, None] * jac
    # rotation columns: a few points cross voxel faces within the finite-difference step
    np.testing.assert_allclose(acc[K.GN_SMJ:K.GN_SMJ + 6], terms.sum(0), rtol=1e-3, atol=2e-3 * np.abs(terms).sum())
    jj = acc[K.GN_SJJ:K.GN_SJJ + 36].reshape(6, 6)
    ref = (w[:, None, None] * jac[:, :, None] * jac[:, None, :]).sum(0)
    np.testing.assert_allclose(np.triu(jj), np.triu(ref), rtol=5e-3, atol=1e-2 * np.abs(ref).max())


def test_points_outside_the_moving_image_are_excluded():
    moving, pts, fvals, wts, centre, p = _setup()
    far = pts + np.float32(500.0)
    m, dr = matrix_and_derivatives(p, centre)
    acc = K.gn_accumulate(far, fvals, wts, moving.array, index_map(moving), m, dr, centre, 4).sum(axis=0)
    assert acc[K.GN_COUNT] == 0 and acc[K.GN_SW] == 0
    np.testing.assert_allclose(acc[K.GN_WALL], wts.sum(), rtol=1e-5)


def test_metric_gradients_match_finite_differences():
    moving, pts, fvals, wts, centre, p = _setup(1)
    # fixed values correlated with the moving image so that every metric is informative
    fv = (_moving_values(moving, pts, p * 0.5, centre) * 0.8 + 10).astype(np.float32)
    s = Samples(pts, fv, wts, 3.0)
    eps = np.array([1e-3] * 3 + [1e-5] * 3)
    for metric in ("msd", "ncc", "mi"):
        ev = Evaluator(metric, s, moving, centre, bins=16)
        g = ev.evaluate(p).grad
        fd = np.array([(ev.evaluate(p + eps[i] * e).cost - ev.evaluate(p - eps[i] * e).cost) / (2 * eps[i])
                       for i, e in enumerate(np.eye(6))])
        np.testing.assert_allclose(g, fd, rtol=0.03, atol=0.03 * np.abs(fd).max(), err_msg=metric)


def test_mi_histogram_matches_numpy_parzen_reference():
    moving, pts, fvals, wts, centre, p = _setup(2)
    m, dr = matrix_and_derivatives(p, centre)
    fb = np.random.default_rng(3).integers(0, 8, 500)
    mv = _moving_values(moving, pts, p, centre)
    lo, hi = np.percentile(mv, [1, 99])
    inv = 7 / (hi - lo)
    hist, dh, ws = K.mi_accumulate(pts, fb, wts, moving.array, index_map(moving), m, dr, centre, lo, inv, 8, 12, 5)
    u = np.clip((mv - lo) * inv + 2.0, 2.0, 9.0)
    ref = np.zeros((8, 12))
    for b in range(12):
        x = np.abs(u - b)
        beta = np.where(x < 1, 2 / 3 - x**2 + x**3 / 2, np.where(x < 2, (2 - x) ** 3 / 6, 0.0))
        np.add.at(ref, (fb, np.full(500, b)), wts * beta)
    np.testing.assert_allclose(hist.sum(0), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ws[:, 0].sum(), wts.sum(), rtol=1e-5)


def test_downsample_matches_separable_numpy_reference():
    rng = np.random.default_rng(4)
    arr = rng.normal(size=(9, 12, 16)).astype(np.float32)
    vol = Volume(arr, (1.0, 2.0, 3.0), (1.0, 1.0, 3.0))
    out = halve(vol)  # x, y halved; z (3 mm) only smoothed
    ref = ndimage.correlate1d(arr.astype(float), [1, 2, 1], axis=0, mode="nearest") / 4
    for ax in (1, 2):
        padded = np.concatenate([ref.take([0], ax), ref, ref.take([-1], ax)], axis=ax)
        n = ref.shape[ax] // 2
        i = np.arange(n) * 2
        ref = (padded.take(i, ax) + 3 * padded.take(i + 1, ax) + 3 * padded.take(i + 2, ax) + padded.take(i + 3, ax)) / 8
    np.testing.assert_allclose(out.array, ref, rtol=1e-5, atol=1e-5)
    assert out.spacing == (2.0, 2.0, 3.0)
    np.testing.assert_allclose(out.origin, (1.5, 2.5, 3.0))


def test_deform_kernels_match_numpy_references():
    from igrt.registration import _deform_kernels as DK

    rng = np.random.default_rng(5)
    a = rng.normal(size=(9, 11, 13)).astype(np.float32)
    for sigma in (1.0, 1.5, (0.8, 1.2, 2.0)):
        ref = ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=3.0)
        np.testing.assert_allclose(DK.gaussian(a, sigma), ref, atol=1e-5)
    # block means with a partial last block that repeats the edge voxel
    f = (2, 3, 4)
    pad = np.pad(a, [(0, (-n) % b) for n, b in zip(a.shape, f)], mode="edge")
    ref = pad.reshape(pad.shape[0] // 2, 2, pad.shape[1] // 3, 3, pad.shape[2] // 4, 4).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(DK.block_mean(a, *f), ref, atol=1e-5)
    # trilinear upsampling at arbitrary (clamped) index axes
    ax = np.linspace(-0.5, 13.2, 17).astype(np.float32)
    ay = np.linspace(0.0, 10.0, 7).astype(np.float32)
    az = np.linspace(0.3, 8.9, 5).astype(np.float32)
    zz, yy, xx = np.meshgrid(np.clip(az, 0, 8), np.clip(ay, 0, 10), np.clip(ax, 0, 12), indexing="ij")
    ref = ndimage.map_coordinates(a, [zz, yy, xx], order=1)
    np.testing.assert_allclose(DK.upsample(a, ax, ay, az, np.float32(2.0)), 2.0 * ref, atol=1e-5)
    np.testing.assert_allclose(DK.minus_upsampled(np.ones((5, 7, 17), np.float32), a, ax, ay, az),
                               1.0 - ref, atol=1e-5)
    # Jacobian determinant against np.gradient
    d = rng.normal(size=(3,) + a.shape) * 0.3
    sp = (1.5, 2.0, 2.5)
    g = [np.gradient(d[c], sp[2], sp[1], sp[0]) for c in range(3)]  # each: d/dz, d/dy, d/dx
    m = np.empty((3, 3) + a.shape)
    for c in range(3):
        m[c, 0], m[c, 1], m[c, 2] = g[c][2], g[c][1], g[c][0]
    m[0, 0] += 1
    m[1, 1] += 1
    m[2, 2] += 1
    ref = np.linalg.det(np.moveaxis(m, (0, 1), (-2, -1)))
    got = DK.jacobian_det(*(d[c].astype(np.float32) for c in range(3)), *sp)
    np.testing.assert_allclose(got, ref, atol=1e-4)
