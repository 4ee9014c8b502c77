"""Planar polygons <-> voxel masks on an image grid (RTSTRUCT contours).

Rasterisation is an even-odd scanline fill done for all polygons of a
structure at once: every polygon edge crossing a pixel-centre row toggles the
parity of all pixels at and right of the crossing; a cumulative sum along the
row gives the parity. Polygons on the same slice therefore combine by XOR,
which is how RTSTRUCT encodes holes (an inner contour inside an outer one)
and several islands per slice. Pixel centres exactly on a left edge count as
inside, on a right edge as outside (half-open rule), so two polygons sharing
an edge never double-count a pixel.

Contouring (mask -> polygons) is marching squares at level 0.5 (contourpy,
the engine behind matplotlib's ``contour``): the line passes half way between
inside and outside pixel centres, so rasterising it again gives the mask back.
"""

from __future__ import annotations

import numpy as np

from igrt.geometry import Volume


def polygon_crossings(polys_ij: list[np.ndarray], ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and crossing columns of every (edge, pixel-centre row) pair of closed 2D polygons.

    ``polys_ij`` are (N, 2) arrays of continuous (column, row) pixel
    coordinates. Returns (row, col) integer arrays, ``col = ceil(x)`` clipped
    to [0, nx], for the toggle accumulation.
    """
    if not polys_ij:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.concatenate([p for p in polys_ij])
    ends = np.concatenate([np.roll(p, -1, axis=0) for p in polys_ij])
    x0, y0 = starts[:, 0], starts[:, 1]
    x1, y1 = ends[:, 0], ends[:, 1]
    ylo = np.minimum(y0, y1)
    yhi = np.maximum(y0, y1)
    # Rows j with ylo <= j < yhi (half-open: horizontal edges and shared vertices count once).
    jlo = np.clip(np.ceil(ylo), 0, ny).astype(np.int64)
    jhi = np.clip(np.ceil(yhi), 0, ny).astype(np.int64)
    counts = np.maximum(jhi - jlo, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    edge = np.repeat(np.arange(len(x0)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    rows = jlo[edge] + (np.arange(total) - first)
    t = (rows - y0[edge]) / (y1[edge] - y0[edge])
    x = x0[edge] + t * (x1[edge] - x0[edge])
    cols = np.clip(np.ceil(x), 0, nx).astype(np.int64)
    return rows, cols


def fill_polygons_2d(polys_ij: list[np.ndarray], ny: int, nx: int) -> np.ndarray:
    """Even-odd fill of closed polygons (pixel coordinates) on an (ny, nx) grid; bool mask."""
    rows, cols = polygon_crossings(polys_ij, ny, nx)
    acc = np.bincount(rows * (nx + 1) + cols, minlength=ny * (nx + 1)).reshape(ny, nx + 1)
    return (np.cumsum(acc[:, :nx], axis=1) & 1).astype(bool)


def rasterise_contours(contours_mm: list[np.ndarray], grid: Volume, supersample: int = 1) -> tuple[np.ndarray, int]:
    """Mask on ``grid`` (shape [z, y, x]) from closed planar contours in LPS mm.

    Each contour is assigned to the nearest slice of the grid; contours off the
    grid in z are dropped (their count is returned). ``supersample > 1`` gives
    in-plane partial-volume fractions (float32 in 0..1) from an s x s
    sub-pixel fill; otherwise a bool mask. Returns (mask, dropped).
    """
    nz, ny, nx = grid.shape
    s = int(max(1, supersample))
    polys_by_k: dict[int, list[np.ndarray]] = {}
    dropped = 0
    for c in contours_mm:
        c = np.asarray(c, dtype=float).reshape(-1, 3)
        if len(c) < 3:
            dropped += 1
            continue
        ijk = grid.to_index(c)
        k = int(np.round(ijk[:, 2].mean()))
        if k < 0 or k >= nz:
            dropped += 1
            continue
        xy = ijk[:, :2]
        if s > 1:  # sub-pixel centres of pixel i sit at i + (a + 0.5)/s - 0.5, a = 0..s-1
            xy = (xy + 0.5) * s - 0.5
        polys_by_k.setdefault(k, []).append(xy)
    out = np.zeros((nz, ny, nx), dtype=np.float32 if s > 1 else bool)
    if not polys_by_k:
        return out, dropped
    # All slices in one accumulation over the bounding box of the polygons (no per-voxel Python).
    ks = sorted(polys_by_k)
    allxy = np.concatenate([p for k in ks for p in polys_by_k[k]])
    x_lo = int(max(0, np.floor(allxy[:, 0].min())))
    y_lo = int(max(0, np.floor(allxy[:, 1].min())))
    x_hi = int(min(nx * s, np.ceil(allxy[:, 0].max()) + 1))
    y_hi = int(min(ny * s, np.ceil(allxy[:, 1].max()) + 1))
    if s > 1:  # align the box to whole pixels so the sub-pixel blocks reduce cleanly
        x_lo, y_lo = (x_lo // s) * s, (y_lo // s) * s
        x_hi, y_hi = -(-x_hi // s) * s, -(-y_hi // s) * s
    bw, bh = x_hi - x_lo, y_hi - y_lo
    if bw <= 0 or bh <= 0:
        return out, dropped
    flat_idx = []
    for slot, k in enumerate(ks):
        polys = [p - (x_lo, y_lo) for p in polys_by_k[k]]
        r, c = polygon_crossings(polys, bh, bw)
        flat_idx.append((slot * bh + r) * (bw + 1) + c)
    idx = np.concatenate(flat_idx)
    acc = np.bincount(idx, minlength=len(ks) * bh * (bw + 1)).reshape(len(ks), bh, bw + 1)
    inside = (np.cumsum(acc[:, :, :bw], axis=2) & 1).astype(bool)
    if s > 1:
        frac = inside.reshape(len(ks), bh // s, s, bw // s, s).mean(axis=(2, 4), dtype=np.float32)
        out[np.asarray(ks)[:, None, None], np.arange(y_lo // s, y_hi // s)[None, :, None], np.arange(x_lo // s, x_hi // s)[None, None, :]] = frac
    else:
        out[ks, y_lo:y_hi, x_lo:x_hi] = inside
    return out, dropped


def _simplify_collinear(poly: np.ndarray) -> np.ndarray:
    """Drop vertices lying on the straight line between their neighbours (closed polygon)."""
    if len(poly) < 4:
        return poly
    prev = np.roll(poly, 1, axis=0)
    nxt = np.roll(poly, -1, axis=0)
    cross = (poly[:, 0] - prev[:, 0]) * (nxt[:, 1] - poly[:, 1]) - (poly[:, 1] - prev[:, 1]) * (nxt[:, 0] - poly[:, 0])
    keep = np.abs(cross) > 1e-9
    return poly[keep] if keep.sum() >= 3 else poly


def mask_to_polygons_2d(mask2d: np.ndarray, level: float = 0.5) -> list[np.ndarray]:
    """Closed polygons (N, 2) in (column, row) pixel coordinates around ``mask2d >= level``.

    The slice is padded with zeros so every contour closes; holes come out as
    separate polygons (even-odd fill restores them).
    """
    import contourpy

    m = np.asarray(mask2d)
    rows = np.nonzero((m >= level).any(axis=1))[0]
    if rows.size == 0:
        return []
    cols = np.nonzero((m >= level).any(axis=0))[0]
    # Contour only the bounding box (plus a zero border so every line closes).
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    padded = np.zeros((r1 - r0 + 2, c1 - c0 + 2), dtype=np.float64)
    padded[1:-1, 1:-1] = m[r0:r1, c0:c1]
    gen = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate, corner_mask=False)
    polys = []
    for line in gen.lines(level):
        pts = np.asarray(line, dtype=float) + (c0 - 1.0, r0 - 1.0)  # back to full-slice pixel coordinates
        if len(pts) > 1 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        if len(pts) >= 3:
            polys.append(_simplify_collinear(pts))
    return polys


def mask_to_contours(mask: Volume, level: float = 0.5) -> list[tuple[int, np.ndarray]]:
    """Planar contours (z index, (N, 3) LPS mm) of a mask Volume, slice by slice."""
    arr = np.asarray(mask.array)
    out: list[tuple[int, np.ndarray]] = []
    ks = np.nonzero(arr.reshape(arr.shape[0], -1).max(axis=1) >= level)[0] if arr.dtype != bool else np.nonzero(arr.any(axis=(1, 2)))[0]
    for k in ks:
        for poly in mask_to_polygons_2d(arr[k], level):
            ijk = np.column_stack([poly, np.full(len(poly), float(k))])
            out.append((int(k), mask.to_world(ijk)))
    return out


def contour_volume_cc(contours_mm: list[np.ndarray], slice_thickness_mm: float | None = None) -> float:
    """Volume in cm^3 enclosed by planar contours (even-odd nesting, each slab one slice thick).

    The plane normal comes from the contours themselves; the slab thickness
    is the given one, else the median spacing between distinct contour planes.
    """
    polys = [np.asarray(c, float).reshape(-1, 3) for c in contours_mm if len(np.asarray(c).reshape(-1, 3)) >= 3]
    if not polys:
        return 0.0
    # Plane normal from the first non-degenerate contour (Newell's method).
    normal = None
    for p in polys:
        n = np.cross(p - p.mean(axis=0), np.roll(p, -1, axis=0) - p.mean(axis=0)).sum(axis=0)
        if np.linalg.norm(n) > 1e-9:
            normal = n / np.linalg.norm(n)
            break
    if normal is None:
        return 0.0
    u = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    planes = np.array([float(p.mean(axis=0) @ normal) for p in polys])
    keys = np.round(planes, 2)
    if slice_thickness_mm is None:
        uniq = np.unique(keys)
        slice_thickness_mm = float(np.median(np.diff(uniq))) if len(uniq) > 1 else 0.0
    from matplotlib.path import Path as MplPath

    total = 0.0
    for key in np.unique(keys):
        group = [polys[i] for i in np.nonzero(keys == key)[0]]
        uv = [np.column_stack([g @ u, g @ v]) for g in group]
        for i, a in enumerate(uv):
            x, y = a[:, 0], a[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
            # Nesting depth by even-odd: how many other polygons contain this one's first vertex.
            depth = sum(MplPath(b).contains_point(a[0]) for j, b in enumerate(uv) if j != i)
            total += area if depth % 2 == 0 else -area
    return total * slice_thickness_mm / 1000.0
