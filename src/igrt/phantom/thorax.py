"""Thorax anatomy (lung SBRT site) painted into a label map.

Coordinates LPS mm with z = 0 near mid-thorax: x to the patient's left,
y posterior, z superior. Organs are painted in order, later ones win, so the
label map is a partition (organs cannot overlap).
"""

from __future__ import annotations

import numpy as np

from igrt.phantom import tissues as T
from igrt.phantom.columns import paint_columns, plane_coords
from igrt.phantom.config import PhantomConfig
from igrt.phantom.shapes import Grid, Implicit, capsule, ellipsoid, paint, tube
from igrt.geometry import rotation_matrix

VERTEBRA_PITCH_MM = 25.0
DISC_MM = 5.0
LUNG_APEX_Z = 125.0
SOFT = (T.MUSCLE, T.FAT, T.LIVER)


def body_outline(cfg: PhantomConfig, inset_mm: float, a: float = 165.0, b: float = 110.0) -> Implicit:
    """Body cross-section (superellipse, flatter posteriorly because the patient lies on it), inset by ``inset_mm``."""
    ax, by = a * cfg.body_scale - inset_mm, b * cfg.body_scale - inset_mm

    def inside(x, y, z):
        e = np.where(y > 0, 3.2, 2.3).astype(np.float32)
        return np.abs(x / ax) ** e + np.abs(y / by) ** e <= 1.0

    return Implicit(np.array([-ax, -by, -1e4]), np.array([ax, by, 1e4]), inside)


def _lung(cfg: PhantomConfig, side: int) -> Implicit:
    """One lung: superelliptic column inside the rib cage, rounded apex, diaphragm dome below."""
    s = cfg.body_scale
    cx, cy, ax, ay = side * 68.0 * s, 5.0 * s, 62.0 * s, 76.0 * s
    dome_base, dome_height = (-85.0, 35.0) if side < 0 else (-95.0, 30.0)  # the liver lifts the right dome
    cavity_a, cavity_b = 165.0 * s - 32.0, 110.0 * s - 32.0

    def inside(x, y, z):
        u = np.clip((z - 10.0) / (LUNG_APEX_Z - 10.0), 0.0, 1.0)
        k = np.sqrt(np.maximum(1.0 - u * u, 1e-6))  # apex taper
        r2 = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
        z_floor = dome_base + dome_height * np.clip(1.0 - r2, 0.0, 1.0)
        in_plane = (np.abs((x - cx) / (ax * k)) ** 2.2 + np.abs((y - cy) / (ay * k)) ** 2.2) <= 1.0
        in_cavity = (x / cavity_a) ** 2 + (y / cavity_b) ** 2 <= 1.0
        return in_plane & in_cavity & (z >= z_floor) & (z <= LUNG_APEX_Z)

    return Implicit(np.array([cx - ax, cy - ay, dome_base]), np.array([cx + ax, cy + ay, LUNG_APEX_Z]), inside)


def _lobulated(centre, semi_axes, lobulation: float, rng: np.random.Generator) -> Implicit:
    """Ellipsoid with a smooth random bumpy surface (tumour): rho <= 1 + lobulation * f(direction)."""
    c = np.asarray(centre, dtype=np.float32)
    a = np.asarray(semi_axes, dtype=np.float32)
    dirs = rng.standard_normal((5, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    amps = rng.uniform(-1.0, 1.0, 5)
    amps /= max(np.abs(amps).sum(), 1e-9)  # |f| <= 1 so the shape stays within (1 +- lobulation) a

    def inside(x, y, z):
        ux, uy, uz = (x - c[0]) / a[0], (y - c[1]) / a[1], (z - c[2]) / a[2]
        rho = np.sqrt(ux * ux + uy * uy + uz * uz)
        inv = 1.0 / np.maximum(rho, 1e-6)
        f = np.zeros_like(rho)
        for d, amp in zip(dirs, amps):
            cosang = (ux * d[0] + uy * d[1] + uz * d[2]) * inv
            f = f + amp * (2.0 * cosang * cosang - 1.0) * cosang  # smooth odd/even mix of lobes
        return rho <= 1.0 + lobulation * f

    half = a * (1.0 + lobulation)
    return Implicit(c - half, c + half, inside)


def paint_thorax(grid: Grid, cfg: PhantomConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Label map (uint8, [z, y, x]) of the thorax and the anatomy facts the motion model needs."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    s = cfg.body_scale
    # body layers: skin 2 mm, subcutaneous fat 12 mm, then muscle/soft tissue
    paint(labels, grid, body_outline(cfg, 0.0), T.SKIN)
    paint(labels, grid, body_outline(cfg, 2.0), T.FAT)
    paint(labels, grid, body_outline(cfg, 14.0), T.MUSCLE)
    # liver under the right diaphragm (painted first; lungs and heart carve it)
    cav_a, cav_b = 165.0 * s - 32.0, 110.0 * s - 32.0
    liver = ellipsoid((-30.0 * s, 0.0, -120.0), (cav_a * 0.85, cav_b * 0.9, 80.0))
    paint(labels, grid, liver, T.LIVER, only=(T.MUSCLE,))
    # lungs
    for side, lab in ((-1, T.LUNG_R), (1, T.LUNG_L)):
        paint(labels, grid, _lung(cfg, side), lab, only=(T.MUSCLE, T.LIVER))
    # mediastinum: fat envelope, heart, great vessels, oesophagus, airways
    lungs = (T.LUNG_R, T.LUNG_L)
    medi = ellipsoid((3.0, -5.0, 40.0), (30.0 * s, 62.0 * s, 110.0), exponent=2.5)
    paint(labels, grid, medi, T.FAT, only=lungs + (T.MUSCLE,))
    heart_rot = rotation_matrix(0.0, 0.0, 25.0)
    heart_c = (22.0 * s, -22.0 * s, -45.0)
    paint(labels, grid, ellipsoid(heart_c, (66.0 * s, 52.0 * s, 56.0), rotation=heart_rot), T.FAT, only=lungs + SOFT)
    paint(labels, grid, ellipsoid(heart_c, (60.0 * s, 46.0 * s, 50.0), rotation=heart_rot), T.HEART)
    aorta_path = [(8, -28, -25), (8, -28, 35), (12, -8, 55), (22, 15, 52), (25, 28, 35), (25, 30, -200)]
    for cap in tube(np.asarray(aorta_path, float) * [s, s, 1.0], 12.0):
        paint(labels, grid, cap, T.AORTA, only=lungs + SOFT)
    oeso = [(4.0, 20.0 * s, 200.0), (6.0, 18.0 * s, 0.0), (12.0, 10.0 * s, -110.0)]
    for cap in tube(oeso, 8.0):
        paint(labels, grid, cap, T.OESOPHAGUS, only=lungs + SOFT)
    for cap in tube(oeso, 2.5):
        paint(labels, grid, cap, T.OESO_LUMEN, only=(T.OESOPHAGUS,))
    carina = np.array([0.0, -2.0, 30.0])
    airway = [(carina + [0, -3, 170], carina, 11.0), (carina, (-48.0 * s, 3.0, 2.0), 7.5), (carina, (48.0 * s, 3.0, -4.0), 7.0)]
    for p0, p1, r in airway:
        paint(labels, grid, capsule(p0, p1, r), T.MUSCLE, only=lungs + SOFT)
    for p0, p1, r in airway:
        paint(labels, grid, capsule(p0, p1, r - 2.0), T.AIRWAY)
    # spine: vertebral bodies with discs, canal + cord, posterior elements, transverse processes
    x2, y2 = plane_coords(grid)
    vb_y, canal_y = 45.0 * s, 73.0 * s
    z_ref = 0.0

    def level_phase(z):
        return np.mod(z - z_ref, VERTEBRA_PITCH_MM)

    body2d = (x2 / 21.0) ** 2 + ((y2 - vb_y) / 16.5) ** 2 <= 1.0
    paint_columns(labels, grid, body2d, lambda z, c: np.broadcast_to(level_phase(z) >= DISC_MM, (z.size, c[0].size)), T.VERTEBRA)
    paint_columns(labels, grid, body2d, lambda z, c: np.broadcast_to(level_phase(z) < DISC_MM, (z.size, c[0].size)), T.DISC)
    rc = np.sqrt(x2**2 + (y2 - canal_y) ** 2)
    lamina = (rc >= 9.0) & (rc <= 15.5) & (y2 >= canal_y - 10.0)
    spinous = (np.abs(x2) <= 4.0) & (y2 >= canal_y + 12.0) & (y2 <= canal_y + 34.0 * s)
    transverse = (np.abs(x2) <= 38.0) & (np.abs(y2 - (canal_y + 2.0)) <= 4.5) & (np.abs(x2) >= 12.0)
    post2d = lamina | spinous
    paint_columns(labels, grid, post2d, lambda z, c: np.broadcast_to(level_phase(z) >= 7.0, (z.size, c[0].size)), T.VERTEBRA)
    paint_columns(labels, grid, transverse & ~post2d,
                  lambda z, c: np.broadcast_to(np.abs(level_phase(z) - 15.0) <= 5.0, (z.size, c[0].size)), T.VERTEBRA)
    paint_columns(labels, grid, rc < 9.0, lambda z, c: np.ones((z.size, c[0].size), bool), T.CANAL)
    paint_columns(labels, grid, np.sqrt(x2**2 + (y2 - canal_y + 1.0) ** 2) < 5.0,
                  lambda z, c: np.ones((z.size, c[0].size), bool), T.CORD)
    # ribs: a ring inside the chest wall, one pair per vertebra, descending anteriorly
    ra, rb = 165.0 * s - 27.0, 110.0 * s - 27.0
    rho = np.sqrt((x2 / ra) ** 2 + (y2 / rb) ** 2)
    ring_dist = np.sqrt(x2**2 + y2**2) * (1.0 - 1.0 / np.maximum(rho, 1e-6))
    theta = np.abs(np.arctan2(x2, y2))  # 0 posterior, pi anterior
    ring2d = (np.abs(ring_dist) <= 4.0) & (theta >= 0.28) & (theta <= 2.55)
    drop = 85.0 * (theta / np.pi) ** 1.3  # mm the rib descends from spine to front

    def rib_z(z, cols):
        d = drop[cols]
        ph = np.mod(z + d[None, :] - z_ref - 15.0, VERTEBRA_PITCH_MM)
        near = np.minimum(ph, VERTEBRA_PITCH_MM - ph) <= 4.5
        level_z = z + d[None, :]
        return near & (level_z <= LUNG_APEX_Z + 5.0) & (level_z >= -70.0)

    paint_columns(labels, grid, ring2d, rib_z, T.RIBS, only=(T.MUSCLE, T.FAT, T.LIVER))
    sternum = ellipsoid((0.0, -110.0 * s + 21.0, -5.0), (17.0, 7.0, 72.0), exponent=4.0)
    paint(labels, grid, sternum, T.STERNUM, only=(T.MUSCLE, T.FAT))
    # tumour (GTV) in the lung
    gtv = _lobulated(cfg.tumour_centre_mm, cfg.tumour_semi_axes_mm, cfg.tumour_lobulation, rng)
    paint(labels, grid, gtv, T.GTV_LUNG, only=lungs)
    facts = {
        "target_centre_mm": np.asarray(cfg.tumour_centre_mm, float),
        "target_semi_axes_mm": np.asarray(cfg.tumour_semi_axes_mm, float) * (1.0 + cfg.tumour_lobulation),
    }
    return labels, facts
