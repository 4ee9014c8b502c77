"""Synthetic thorax-like anatomy with known rigid errors, for tests, benchmarks and demos.

The anatomy is an analytic function of LPS position (mm) with soft edges, so
a daily image of a patient displaced by a rigid setup error ``T`` (planning
-> daily) is evaluated exactly at ``T^-1(y)`` on any grid (no interpolation
bias in the ground truth). `cbct_like` then adds CBCT degradations: HU
scale/offset, cupping, blur, noise and a limited field of view.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from igrt.geometry import RigidTransform, Volume


def _soft(d: np.ndarray, edge_mm: float) -> np.ndarray:
    """0 outside, 1 inside for a signed depth d (mm, positive inside)."""
    return 0.5 * (1.0 + np.tanh(d / edge_mm))


def _ellipsoid_depth(x, y, z, c, r):
    q = np.sqrt(((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2)
    return (1.0 - q) * min(r)


def _cyl_depth(x, y, c, r):
    q = np.sqrt(((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2)
    return (1.0 - q) * min(r)


def anatomy_hu(x: np.ndarray, y: np.ndarray, z: np.ndarray, edge_mm: float = 1.0, seed: int = 7) -> np.ndarray:
    """HU of a thorax/abdomen-like phantom at LPS points (broadcastable arrays, mm).

    Body ~ 300 x 210 mm, lungs, heart, spine (vertebral bodies, discs,
    canal, posterior elements), ribs, sternum, a tumour and hip-like bones,
    plus smooth soft-tissue texture. Deliberately asymmetric.
    """
    x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float32) for v in (x, y, z)))
    rng = np.random.default_rng(seed)
    hu = np.full(x.shape, -1000.0, dtype=np.float32)

    def put(value, weight):
        nonlocal hu
        hu = hu + (np.asarray(value, np.float32) - hu) * weight.astype(np.float32)

    tex = np.zeros(x.shape, np.float32)
    for _ in range(10):
        k = rng.normal(size=3)
        k *= 2 * np.pi / rng.uniform(12.0, 45.0) / np.linalg.norm(k)
        tex += np.float32(rng.uniform(4.0, 9.0)) * np.cos(k[0] * x + k[1] * y + k[2] * z + rng.uniform(0, 2 * np.pi))
    body = _soft(_cyl_depth(x, y, (0.0, 5.0), (150.0, 105.0)), edge_mm)
    put(20.0 + tex, body)
    fat = _soft(-_cyl_depth(x, y, (0.0, 5.0), (138.0, 93.0)), 2.0 * edge_mm) * body
    put(-90.0 + 0.5 * tex, fat)
    for sx, c, r in ((1, (68.0, -5.0, 35.0), (48.0, 58.0, 95.0)), (-1, (-72.0, 0.0, 30.0), (44.0, 55.0, 90.0))):
        lung = _soft(_ellipsoid_depth(x, y, z, c, r), edge_mm)
        put(-820.0 + 3.0 * tex, lung)
    put(45.0 + 0.5 * tex, _soft(_ellipsoid_depth(x, y, z, (22.0, -28.0, -10.0), (45.0, 38.0, 42.0)), edge_mm))
    put(35.0, _soft(_ellipsoid_depth(x, y, z, (-64.0, -22.0, 48.0), (14.0, 12.0, 16.0)), edge_mm))
    # spine: vertebral bodies separated by discs every 28 mm, canal and posterior ring
    vb = _soft(_cyl_depth(x, y, (0.0, 52.0), (17.0, 15.0)), edge_mm)
    disc = _soft(3.5 - np.abs(((z + 9.0) % 28.0) - 14.0), edge_mm) * vb
    put(650.0 + 2.0 * tex, vb)
    put(80.0, disc)
    ring = _soft(_cyl_depth(x, y, (0.0, 82.0), (15.0, 13.0)), edge_mm)
    put(520.0, ring)
    put(15.0, _soft(_cyl_depth(x, y, (0.0, 82.0), (7.0, 7.0)), edge_mm))
    put(480.0, _soft(np.minimum(np.minimum(10.0 - np.abs(x + 2.0), 6.0 - np.abs(y + 88.0)), 200.0 - np.abs(z)), edge_mm))
    # ribs: elliptical bands every 26 mm, left/right offset, absent anteriorly
    shell = _soft(4.0 - np.abs(_cyl_depth(x, y, (0.0, 8.0), (128.0, 86.0))), edge_mm) * _soft(y + 55.0, 3.0 * edge_mm)
    m = np.mod(z - 0.12 * x + 180.0, 26.0)  # distance to the nearest rib plane (every 26 mm, tilted)
    band = _soft(4.5 - np.minimum(m, 26.0 - m), edge_mm)
    put(560.0, shell * band)
    for sx in (1.0, -1.0):  # hip-like bones below the thorax
        put(700.0, _soft(_ellipsoid_depth(x, y, z, (sx * 88.0, 25.0, -150.0), (26.0, 30.0, 34.0)), edge_mm))
    return hu


def grid(shape_zyx, spacing_xyz, centre_mm=(0.0, 0.0, 0.0)) -> Volume:
    """An empty axis-aligned grid (float32) centred at ``centre_mm``."""
    return Volume.centred(np.zeros(shape_zyx, np.float32), spacing_xyz, centre_mm)


def render(reference: Volume, setup_error: RigidTransform | None = None, edge_mm: float = 1.0, seed: int = 7) -> Volume:
    """The anatomy displaced by ``setup_error`` (planning -> daily) on ``reference``'s grid."""
    x, y, z = reference.world_coordinates()
    if setup_error is not None:
        inv = setup_error.inverse()
        pts = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3)
        q = inv.apply(pts).astype(np.float32).reshape(*reference.shape, 3)
        x, y, z = q[..., 0], q[..., 1], q[..., 2]
    return reference.with_array(anatomy_hu(x, y, z, edge_mm=edge_mm, seed=seed))


def cbct_like(
    image: Volume,
    rng: np.random.Generator,
    *,
    noise_hu: float = 25.0,
    blur_mm: float = 1.2,
    hu_scale: float = 1.0,
    hu_offset: float = 0.0,
    cupping_hu: float = 60.0,
    fov_radius_mm: float | None = None,
) -> Volume:
    """CBCT-like degradation: HU scale/offset, radial cupping, Gaussian blur and noise, FOV clip."""
    arr = image.array.astype(np.float32) * np.float32(hu_scale) + np.float32(hu_offset)
    x, y, _ = image.world_coordinates()
    c = image.centre
    r2 = ((x - c[0]) ** 2 + (y - c[1]) ** 2) / 150.0**2
    arr = arr - np.float32(cupping_hu) * np.clip(1.0 - r2, 0, 1).astype(np.float32)
    if blur_mm > 0:
        arr = ndimage.gaussian_filter(arr, sigma=[blur_mm / s for s in image.spacing[::-1]])
    if noise_hu > 0:
        arr = arr + rng.normal(0.0, noise_hu, arr.shape).astype(np.float32)
    if fov_radius_mm is not None:
        arr = np.where(((x - c[0]) ** 2 + (y - c[1]) ** 2) > fov_radius_mm**2, np.float32(-1000.0 * hu_scale + hu_offset), arr)
    return image.with_array(arr.astype(np.float32))


def random_setup_error(rng: np.random.Generator, centre_mm, max_mm: float = 20.0, max_deg: float = 4.0) -> RigidTransform:
    """Uniform random translations (mm) and rotations (deg) about ``centre_mm``."""
    return RigidTransform.from_params(rng.uniform(-max_mm, max_mm, 3), rng.uniform(-max_deg, max_deg, 3), centre_mm)


def bump_field(points: np.ndarray, centre=(22.0, -28.0, -10.0), amp_mm: float = 12.0, sigma_mm: float = 30.0) -> np.ndarray:
    """Radial Gaussian expansion (bladder-filling-like) displacement (N, 3) in mm at LPS points (N, 3)."""
    q = np.asarray(points, float) - np.asarray(centre, float)
    r2 = (q**2).sum(axis=1, keepdims=True)
    return amp_mm * np.exp(-r2 / (2 * sigma_mm**2)) * q / sigma_mm


def render_deformed(reference: Volume, field, iterations: int = 15, edge_mm: float = 1.0) -> Volume:
    """The anatomy deformed by ``phi(p) = p + field(p)`` (planning -> daily) on ``reference``'s grid.

    Samples ``anatomy(phi^-1(y))``; the inverse is found by fixed-point iteration
    (converges for fields whose gradient stays well below 1).
    """
    x, y, z = reference.world_coordinates()
    yy = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3).astype(float)
    p = yy.copy()
    for _ in range(iterations):
        p = yy - field(p)
    p = p.reshape(*reference.shape, 3).astype(np.float32)
    return reference.with_array(anatomy_hu(p[..., 0], p[..., 1], p[..., 2], edge_mm=edge_mm))
