"""Test objects for imaging: the 3D Shepp-Logan head phantom and small beads."""

from __future__ import annotations

import numpy as np

from igrt.geometry import Volume

# 3D Shepp-Logan (Kak & Slaney ellipses extended to 3D, modified contrasts):
# value, semi-axes (a, b, c), centre (x0, y0, z0), rotation about z (deg); unit cube [-1, 1]^3.
_SHEPP_LOGAN_3D = (
    (1.0, 0.69, 0.92, 0.81, 0.0, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.78, 0.0, -0.0184, 0.0, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.22, 0.0, 0.0, -18.0),
    (-0.2, 0.16, 0.41, 0.28, -0.22, 0.0, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.41, 0.0, 0.35, -0.15, 0.0),
    (0.1, 0.046, 0.046, 0.05, 0.0, 0.1, 0.25, 0.0),
    (0.1, 0.046, 0.046, 0.05, 0.0, -0.1, 0.25, 0.0),
    (0.1, 0.046, 0.023, 0.05, -0.08, -0.605, 0.0, 0.0),
    (0.1, 0.023, 0.023, 0.02, 0.0, -0.606, 0.0, 0.0),
    (0.1, 0.023, 0.046, 0.02, 0.06, -0.605, 0.0, 0.0),
)


def shepp_logan_3d(
    size_xyz=(64, 64, 64),
    spacing_mm=(2.0, 2.0, 2.0),
    *,
    centre_lps_mm=(0.0, 0.0, 0.0),
    radius_mm: float | None = None,
    scale: float = 1.0,
    supersample: int = 1,
) -> Volume:
    """3D Shepp-Logan phantom on an axis-aligned LPS grid centred at ``centre_lps_mm``.

    The unit cube [-1, 1]^3 of the phantom maps to +/- ``radius_mm`` (default:
    90 % of the smallest half-extent of the grid) about the centre; phantom y
    points anterior (LPS -y), z superior. Values are the modified contrasts
    (outer shell 1.0, brain 0.2, ...) times ``scale`` (e.g. a water mu in 1/mm).
    ``supersample`` > 1 averages sub-voxel samples (partial volume).
    """
    size = np.asarray(size_xyz, int)
    sp = np.asarray(spacing_mm, float) * np.ones(3)
    if radius_mm is None:
        radius_mm = 0.9 * float(np.min((size - 1) * sp / 2.0))
    vol = Volume.centred(np.zeros(size[::-1], np.float32), sp, centre_lps_mm)
    out = np.zeros(size[::-1], np.float64)
    s = int(max(1, supersample))
    offsets = (np.arange(s) + 0.5) / s - 0.5
    for ox in offsets:
        for oy in offsets:
            for oz in offsets:
                x, y, z = vol.world_coordinates()
                px = (x + ox * sp[0] - centre_lps_mm[0]) / radius_mm
                py = -(y + oy * sp[1] - centre_lps_mm[1]) / radius_mm
                pz = (z + oz * sp[2] - centre_lps_mm[2]) / radius_mm
                for val, a, b, c, x0, y0, z0, phi in _SHEPP_LOGAN_3D:
                    cp, sn = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
                    dx, dy = px - x0, py - y0
                    xr = cp * dx + sn * dy
                    yr = -sn * dx + cp * dy
                    inside = (xr / a) ** 2 + (yr / b) ** 2 + ((pz - z0) / c) ** 2 <= 1.0
                    out += val * inside
    out *= scale / s**3
    return vol.with_array(out.astype(np.float32))


def bead_volume(
    like: Volume, centre_lps_mm, radius_mm: float, value: float, background: Volume | None = None
) -> Volume:
    """Add a sphere (bead) of ``value`` at ``centre_lps_mm`` to ``background`` (or zeros) on ``like``'s grid.

    Partial volume by 4x supersampling along each axis, so the centroid is exact to ~0.01 voxel.
    """
    base = np.zeros(like.shape, np.float32) if background is None else np.asarray(background.array, np.float32)
    frac = np.zeros(like.shape, np.float64)
    s = 4
    offs = (np.arange(s) + 0.5) / s - 0.5
    x, y, z = like.world_coordinates()
    c = np.asarray(centre_lps_mm, float)
    sp = like.spacing
    for ox in offs:
        for oy in offs:
            for oz in offs:
                d2 = (x + ox * sp[0] - c[0]) ** 2 + (y + oy * sp[1] - c[1]) ** 2 + (z + oz * sp[2] - c[2]) ** 2
                frac += d2 <= radius_mm**2
    frac /= s**3
    return like.with_array((base * (1 - frac) + value * frac).astype(np.float32))
