"""Male pelvis anatomy (prostate site) painted into a label map.

Coordinates LPS mm with z = 0 at the femoral head centres: x to the
patient's left, y posterior, z superior. Painted in order, later wins.
The bladder is an ellipsoid anchored at its base above the prostate; its
size follows the configured volume, so a filling change is a scaling about
that anchor (the deformation model uses exactly this).
"""

from __future__ import annotations

import numpy as np

from igrt.phantom import tissues as T
from igrt.phantom.columns import paint_columns, plane_coords
from igrt.phantom.config import PhantomConfig
from igrt.phantom.shapes import Grid, Implicit, capsule, ellipsoid, paint, tube
from igrt.geometry import rotation_matrix

BLADDER_SHAPE = np.array([1.25, 1.0, 0.9])  # semi-axis ratios (x, y, z)
BLADDER_CENTRE_FROM_ANCHOR = np.array([0.0, -0.25, 0.85])  # in units of k: the dome rises up and forward
BLADDER_WALL_MM = 3.0
RECTUM_WALL_MM = 3.0
RECTUM_Z = (-85.0, 25.0)  # straight rectal segment (the deformation acts on it)


def bladder_geometry(volume_cc: float, anchor_mm) -> tuple[np.ndarray, np.ndarray]:
    """(centre, semi_axes) in mm of the ellipsoidal bladder of ``volume_cc`` anchored at its base."""
    k = (volume_cc * 1000.0 / (4.0 / 3.0 * np.pi * BLADDER_SHAPE.prod())) ** (1.0 / 3.0)
    return np.asarray(anchor_mm, float) + k * BLADDER_CENTRE_FROM_ANCHOR, k * BLADDER_SHAPE


def bladder_anchor(cfg: PhantomConfig) -> np.ndarray:
    """The bladder base point (fixed when the bladder fills), just above the prostate."""
    p = np.asarray(cfg.prostate_centre_mm, float)
    return p + np.array([0.0, -10.0, cfg.prostate_semi_axes_mm[2] + 5.0])


def body_outline(cfg: PhantomConfig, inset_mm: float) -> Implicit:
    """Hips/pelvis cross-section above the perineum; two thighs below it."""
    s = cfg.body_scale
    ax, by = 185.0 * s - inset_mm, 125.0 * s - inset_mm
    tx, ty, tc = 88.0 * s - inset_mm, 82.0 * s - inset_mm, 88.0 * s

    def inside(x, y, z):
        e = np.where(y > 0, 3.0, 2.5).astype(np.float32)
        trunk = np.abs(x / ax) ** e + np.abs(y / by) ** e <= 1.0
        thighs = (((np.abs(x) - tc) / tx) ** 2 + (y / ty) ** 2) <= 1.0
        return np.where(z > -95.0, trunk, thighs)

    return Implicit(np.array([-ax, -by, -1e4]), np.array([ax, by, 1e4]), inside)


def paint_pelvis(grid: Grid, cfg: PhantomConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Label map (uint8, [z, y, x]) of the pelvis and the anatomy facts the deformation model needs."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    s = cfg.body_scale
    paint(labels, grid, body_outline(cfg, 0.0), T.SKIN)
    paint(labels, grid, body_outline(cfg, 2.0), T.FAT)
    paint(labels, grid, body_outline(cfg, 22.0), T.MUSCLE)
    # pelvic fat around the organs; muscles lining the walls and the psoas
    paint(labels, grid, ellipsoid((0.0, 5.0, 10.0), (72.0 * s, 62.0 * s, 120.0), exponent=2.5), T.FAT, only=(T.MUSCLE,))
    for side in (-1, 1):
        paint(labels, grid, ellipsoid((side * 62.0 * s, 10.0, -20.0), (9.0, 36.0, 36.0)), T.MUSCLE, only=(T.FAT,))
        for cap in tube([(side * 42.0 * s, 30.0, 170.0), (side * 55.0 * s, 10.0, 60.0), (side * 72.0 * s, -30.0, 5.0)], 18.0):
            paint(labels, grid, cap, T.MUSCLE, only=(T.FAT,))
    bone_bed = (T.MUSCLE, T.FAT, T.SKIN)
    # femora: head + neck (structure), trochanter and shaft
    for side, lab in ((1, T.FEMUR_L), (-1, T.FEMUR_R)):
        head = np.array([side * 92.0 * s, 5.0, 0.0])
        troch = np.array([side * 127.0 * s, 15.0, -45.0])
        paint(labels, grid, capsule(troch, troch + [side * -8.0, 5.0, -260.0], 14.0), T.FEMUR_SHAFT, only=bone_bed)
        paint(labels, grid, ellipsoid(troch, (18.0, 20.0, 22.0)), T.FEMUR_SHAFT, only=bone_bed)
        paint(labels, grid, capsule(head, troch, 15.0, 13.0), lab, only=bone_bed + (T.FEMUR_SHAFT,))
        paint(labels, grid, ellipsoid(head, (24.0, 24.0, 24.0)), lab, only=bone_bed + (T.FEMUR_SHAFT,))
        # acetabulum: spherical shell around the head, medial and superior part (joint space 2 mm)
        shell = _acetabulum(head, side)
        paint(labels, grid, shell, T.PELVIC_BONE, only=bone_bed)
        # pubic rami, ischium
        front = head + [-side * 17.0, -25.0, -5.0]
        sym = np.array([side * 7.0, -68.0 * s, -25.0])
        tuber = np.array([side * 58.0 * s, 25.0, -60.0])
        back = head + [-side * 12.0, 22.0, -12.0]
        for p0, p1, r in ((front, sym, 10.0), (sym + [0, 0, -12.0], tuber, 8.5), (tuber, back, 13.0)):
            paint(labels, grid, capsule(p0, p1, r), T.PELVIC_BONE, only=bone_bed)
        paint(labels, grid, ellipsoid(sym + [0, 0, -6.0], (7.0, 10.0, 20.0)), T.PELVIC_BONE, only=bone_bed)
        # iliac wing: thin curved plate rising from the acetabulum
        paint(labels, grid, _iliac_wing(side, s), T.PELVIC_BONE, only=bone_bed)
    # sacrum and coccyx: flattened segments along a curve behind the rectum
    path = np.array([(0, 72, 130), (0, 86, 95), (0, 90, 60), (0, 84, 28), (0, 72, 0), (0, 58, -28), (0, 48, -48)], float)
    widths = (55.0, 50.0, 40.0, 30.0, 20.0, 12.0, 7.0)
    thick = (20.0, 18.0, 14.0, 11.0, 9.0, 7.0, 5.0)
    for p, w, t in zip(path, widths, thick):
        paint(labels, grid, ellipsoid(p * [1, s, 1], (w * s, t, 25.0)), T.SACRUM, only=bone_bed)
    for side in (-1, 1):  # sacro-iliac joints: bridge the sacrum to the iliac wings
        paint(labels, grid, capsule((side * 45.0 * s, 80.0 * s, 95.0), (side * 100.0 * s, 72.0 * s, 100.0), 13.0), T.PELVIC_BONE, only=bone_bed)
    # lumbar spine above the sacrum (vertebral body + canal) where the grid reaches
    x2, y2 = plane_coords(grid)
    lumbar = (x2 / 26.0) ** 2 + ((y2 - 45.0 * s) / 20.0) ** 2 <= 1.0
    paint_columns(labels, grid, lumbar, lambda z, c: np.broadcast_to((z > 150.0) & (np.mod(z - 150.0, 33.0) >= 8.0),
                                                                      (z.size, c[0].size)), T.SACRUM, only=bone_bed)
    # rectum: straight segment, anal canal below, sigmoid above; wall then content
    pc = np.asarray(cfg.prostate_centre_mm, float)
    r_r = cfg.rectum_radius_mm
    rect_y = pc[1] + cfg.prostate_semi_axes_mm[1] + 5.0 + r_r
    rect_axis = np.array([pc[0], rect_y])
    z0, z1 = RECTUM_Z
    sigmoid = [(pc[0], rect_y, z1), (pc[0] + 12.0, rect_y - 10.0, z1 + 35.0), (pc[0] + 35.0, rect_y - 25.0, z1 + 70.0)]
    anal = capsule((pc[0], rect_y - 4.0, z0 - 30.0), (pc[0], rect_y, z0), 7.0, r_r * 0.7)
    rect = capsule((pc[0], rect_y, z0), (pc[0], rect_y, z1), r_r)
    soft = (T.FAT, T.MUSCLE)
    for shape in [anal, rect] + tube(sigmoid, [r_r, r_r * 0.9, r_r * 0.8]):
        paint(labels, grid, shape, T.RECTUM_WALL, only=soft)
    content = capsule((pc[0], rect_y, z0 + 5.0), (pc[0], rect_y, z1), r_r - RECTUM_WALL_MM)
    for shape in [content] + tube(sigmoid, [r_r - 3, r_r * 0.9 - 3, r_r * 0.8 - 3]):
        paint(labels, grid, shape, T.RECTUM_CONTENT, only=(T.RECTUM_WALL,))
    # seminal vesicles: between bladder and rectum, above and behind the prostate
    a_p = np.asarray(cfg.prostate_semi_axes_mm, float)
    for side in (-1, 1):
        sv0 = pc + [side * 6.0, a_p[1] * 0.55, a_p[2] * 0.6]
        sv1 = pc + [side * 28.0, a_p[1] * 0.9, a_p[2] * 1.5]
        paint(labels, grid, capsule(sv0, sv1, 6.0, 5.0), T.SEMINAL_VESICLES, only=soft + (T.RECTUM_WALL,))
    # bladder (wall + urine) then prostate, both exact ellipsoids
    anchor = bladder_anchor(cfg)
    bc, ba = bladder_geometry(cfg.bladder_volume_cc, anchor)
    paint(labels, grid, ellipsoid(bc, ba), T.BLADDER_WALL)
    paint(labels, grid, ellipsoid(bc, ba - BLADDER_WALL_MM), T.URINE)
    prostate_rot = rotation_matrix(-15.0, 0.0, 0.0)  # apex tilted forward
    paint(labels, grid, ellipsoid(pc, a_p, rotation=prostate_rot), T.PROSTATE)
    facts = {
        "target_centre_mm": pc,
        "target_semi_axes_mm": a_p,
        "bladder_anchor_mm": anchor,
        "bladder_centre_mm": bc,
        "bladder_semi_axes_mm": ba,
        "rectum_axis_xy_mm": rect_axis,
        "rectum_z_mm": np.array(RECTUM_Z, float),
        "rectum_radius_mm": float(r_r),
        # zone that moves rigidly with the prostate: prostate + seminal vesicles
        "prostate_zone_centre_mm": pc + [0.0, 3.0, 8.0],
        "prostate_zone_semi_axes_mm": np.array([a_p[0] + 18.0, a_p[1] + 6.0, a_p[2] + 20.0]),
    }
    return labels, facts


def _acetabulum(head: np.ndarray, side: int) -> Implicit:
    c = head.astype(np.float32)

    def inside(x, y, z):
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        medial_or_up = (-side * dx >= -4.0) | (dz >= 6.0)
        return (r >= 26.0) & (r <= 36.0) & medial_or_up & (dz >= -22.0)

    return Implicit(c - 36.0, c + 36.0, inside)


def _iliac_wing(side: int, s: float) -> Implicit:
    """Bowl-shaped thin plate: the shell of an ellipsoid, lateral part only, above the acetabulum."""
    c = np.array([0.0, 30.0, 160.0], np.float32)  # centre above the crest: the wing widens upward
    a = np.array([135.0 * s, 92.0 * s, 200.0], np.float32)
    t = 9.0

    def inside(x, y, z):
        dx, dy, dz = (x - c[0]) / a[0], (y - c[1]) / a[1], (z - c[2]) / a[2]
        rho = np.sqrt(dx * dx + dy * dy + dz * dz)
        length = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
        depth = length * (1.0 - 1.0 / np.maximum(rho, 1e-6))  # negative inside
        lateral = (side * x >= 50.0 * s) & (y >= -30.0) & (y <= 80.0 * s) & (z >= 8.0) & (z <= 140.0)
        return (depth <= 0.0) & (depth >= -t) & lateral

    lo = np.array([min(side * 50.0 * s, side * a[0]), -30.0, 8.0])
    hi = np.array([max(side * 50.0 * s, side * a[0]), 80.0 * s, 140.0])
    return Implicit(lo, hi, inside)
