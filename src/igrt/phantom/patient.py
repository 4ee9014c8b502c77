"""`build_patient`: a labelled digital patient with planning CT, structures and a plan.

All geometry is in patient LPS mm, head first supine (HFS). The grid centre
sits at ``config.grid_centre_mm`` (the origin by default); organs are defined
in mm, independently of the grid, so any shape and spacing samples the same
patient.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from igrt.geometry import PatientOrientation, Volume
from igrt.phantom import tissues as T
from igrt.phantom.appearance import synthesize_ct
from igrt.phantom.config import PhantomConfig, default_config
from igrt.phantom.errors import PhantomError
from igrt.phantom.margins import expand_mask
from igrt.phantom.pelvis import paint_pelvis
from igrt.phantom.shapes import Grid
from igrt.phantom.thorax import paint_thorax
from igrt.planning import Beam, Plan, PlanningReference, Structure

DEFAULT_SHAPE = (128, 256, 256)
DEFAULT_SPACING = (1.5, 1.5, 2.5)


@dataclass(eq=False)
class PhantomPatient:
    """A phantom patient: planning CT (HU, float32), organ labels, planning reference and knobs.

    ``labels`` is a uint8 label map on the CT grid whose values are named in
    ``label_names`` (organs cannot overlap in it); ``reference.structures``
    holds the delineated structures (BODY, organs, GTV, CTV, PTV) as boolean
    mask Volumes. ``anatomy`` holds the geometric facts the motion and
    deformation models use (mm, LPS).
    """

    site: str
    ct: Volume
    labels: Volume
    label_names: dict[int, str]
    reference: PlanningReference
    config: PhantomConfig
    seed: int
    anatomy: dict
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def plan(self) -> Plan:
        assert self.reference.plan is not None
        return self.reference.plan

    @property
    def isocentre_mm(self) -> np.ndarray:
        return np.asarray(self.plan.isocentre_mm, dtype=float)

    @property
    def target_centre_mm(self) -> np.ndarray:
        """Centroid of the GTV in the planning CT (LPS mm): the point whose motion is the target motion."""
        return np.asarray(self.anatomy["target_centre_mm"], dtype=float)

    @property
    def structures(self) -> dict[str, Structure]:
        return self.reference.structures

    def mask(self, name: str) -> Volume:
        """Boolean mask Volume of a structure (case-insensitive name)."""
        s = self.reference.structure(name)
        assert s.mask is not None
        return s.mask

    def volume_cc(self, name: str) -> float:
        return self.reference.structure(name).volume_cc()


def planning_grid(shape, spacing, centre_mm=(0.0, 0.0, 0.0)) -> Volume:
    """Empty uint8 grid (shape [nz, ny, nx], spacing (x, y, z) mm) centred at ``centre_mm``."""
    shape = tuple(int(v) for v in np.asarray(shape).reshape(-1))
    if len(shape) != 3 or min(shape) < 8:
        raise PhantomError(f"phantom shape must be three sizes (nz, ny, nx) of at least 8, got {shape}")
    if np.prod(shape, dtype=np.int64) > 512 * 512 * 400:
        raise PhantomError(f"phantom shape {shape} is too large (at most 512 x 512 x 400 voxels)")
    sp = np.asarray(spacing, dtype=float).reshape(-1)
    if sp.shape != (3,) or np.any(sp <= 0) or np.any(sp > 20):
        raise PhantomError(f"phantom spacing must be three values (x, y, z) in (0, 20] mm, got {spacing}")
    return Volume.centred(np.zeros(shape, np.uint8), tuple(sp), centre_mm)


def mask_centroid_mm(mask: Volume) -> np.ndarray:
    """Centroid (LPS mm) of a boolean mask from its axis projections (no voxel list on big grids)."""
    m = np.asarray(mask.array, dtype=bool)
    total = np.count_nonzero(m)
    if total == 0:
        raise PhantomError("cannot take the centroid of an empty mask")
    ijk = [float((np.arange(m.shape[a]) * m.sum(axis=tuple(b for b in range(3) if b != a))).sum()) / total for a in (2, 1, 0)]
    return mask.to_world(np.asarray(ijk))


def _uid(*parts) -> str:
    """Deterministic DICOM UID under the 2.25 (UUID) root, so a seed gives the same UIDs."""
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "igrt-phantom/" + "/".join(map(str, parts))).int)


def build_patient(
    site: str = "lung",
    shape=DEFAULT_SHAPE,
    spacing=DEFAULT_SPACING,
    seed: int = 0,
    config: PhantomConfig | None = None,
    **overrides,
) -> PhantomPatient:
    """Build a phantom patient.

    ``site`` is "lung" (thorax, SBRT 3 x 18 Gy) or "pelvis" (prostate,
    20 x 3 Gy); ``shape`` is (nz, ny, nx) voxels, ``spacing`` (x, y, z) mm;
    ``seed`` fixes the texture, noise and tumour shape; ``config`` or keyword
    ``overrides`` (fields of `PhantomConfig`) change the anatomy and plan.
    """
    site = str(site).lower()
    cfg = config if config is not None else default_config(site, **overrides)
    if config is not None and overrides:
        cfg = default_config(cfg.site, **{**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__ if f != "site"}, **overrides})
    if cfg.site != site:
        raise PhantomError(f"config is for site {cfg.site!r} but site {site!r} was asked for")
    grid_vol = planning_grid(shape, spacing, cfg.grid_centre_mm)
    grid = Grid.of(grid_vol)
    ss = np.random.SeedSequence([int(seed), 4])
    rng_shape, rng_image = (np.random.default_rng(s) for s in ss.spawn(2))
    if site == "lung":
        labels, facts = paint_thorax(grid, cfg, rng_shape)
        structure_defs = T.LUNG_STRUCTURES
        gtv = labels == T.GTV_LUNG
        ctv_seed = gtv
    else:
        labels, facts = paint_pelvis(grid, cfg, rng_shape)
        structure_defs = T.PELVIS_STRUCTURES
        gtv = labels == T.PROSTATE
        sv = labels == T.SEMINAL_VESICLES
        near = expand_mask(grid_vol.with_array(gtv), 15.0).array  # proximal 15 mm of the seminal vesicles
        ctv_seed = gtv | (sv & near)
    if not gtv.any():
        raise PhantomError("the target lies outside the grid; enlarge the shape/spacing or move the target")
    hu = synthesize_ct(labels, grid_vol, cfg, rng_image)
    ct = grid_vol.with_array(hu)
    label_vol = grid_vol.with_array(labels)

    structures: dict[str, Structure] = {}

    def add(name: str, mask: np.ndarray, roi_type: str, colour) -> None:
        structures[name] = Structure(name, grid_vol.with_array(mask), roi_type, len(structures) + 1, tuple(colour))

    for sd in structure_defs:
        lut = np.zeros(256, bool)
        lut[list(sd.labels)] = True
        m = labels != T.AIR if sd.roi_type == "EXTERNAL" else lut[labels]
        add(sd.name, m, sd.roi_type, sd.colour)
    ctv = expand_mask(grid_vol.with_array(ctv_seed), cfg.ctv_margin_mm).array
    ptv = expand_mask(grid_vol.with_array(ctv), cfg.ptv_margin_mm).array
    body = labels != T.AIR
    add("GTV", gtv, "GTV", (255, 0, 0))
    add("CTV", ctv & body, "CTV", (255, 128, 0))
    add("PTV", ptv & body, "PTV", (0, 255, 255))
    facts["target_centre_mm"] = mask_centroid_mm(structures["GTV"].mask)
    iso = np.round(mask_centroid_mm(structures["PTV"].mask), 2)
    beams = tuple(
        Beam(
            number=i + 1,
            name=f"G{g:03.0f}",
            gantry_deg=float(g) % 360.0,
            isocentre_mm=tuple(float(v) for v in iso),
            energy_mv=cfg.energy_mv,
        )
        for i, g in enumerate(cfg.gantry_angles_deg)
    )
    plan = Plan(
        label="LUNG_SBRT" if site == "lung" else "PROSTATE",
        orientation=PatientOrientation.HFS,
        beams=beams,
        prescription_gy=float(cfg.prescription_gy),
        fractions=int(cfg.fractions),
        target_name="PTV",
    )
    pid = cfg.patient_id or f"PHANTOM-{site.upper()}-{int(seed):04d}"
    ref = PlanningReference(
        patient_id=pid,
        patient_name=cfg.patient_name or f"Phantom^{site.capitalize()}^{int(seed)}",
        frame_of_reference_uid=_uid(pid, ct.shape, ct.spacing, "frame"),
        study_uid=_uid(pid, ct.shape, ct.spacing, "study"),
        ct=ct,
        structures=structures,
        plan=plan,
        notes=(f"igrt digital phantom, site {site}, seed {int(seed)}",),
    )
    present = np.bincount(labels.ravel(), minlength=256) > 0
    names = {t.label: t.name for t in T.TISSUES.values() if t.label == 0 or present[t.label]}
    return PhantomPatient(site, ct, label_vol, names, ref, cfg, int(seed), facts)
