"""Daily imaging: cone-beam CT geometry, forward projection, FDK, CBCT simulation and DRRs.

Quick use (a daily CBCT of a phantom or planning CT, in HU, on the CT's grid)::

    from igrt.imaging import simulate_and_reconstruct
    cbct = simulate_and_reconstruct(ct_hu, isocentre_mm=plan.isocentre, seed=1,
                                    photons_per_pixel=1e5, scatter_to_primary=0.2)

Moving anatomy: pass ``volume_at=lambda t_s: daily_anatomy(patient, truth, t_s=t_s)``
(HU Volume at time t) and the gantry speed; the tumour blurs as in free breathing.

Conventions: geometry in IEC 61217 fixed coordinates about the machine
isocentre (gantry about IEC Y, gantry 0 = source above); a patient is placed
with its plan isocentre (LPS) at the machine isocentre and an orientation
(default HFS). Volumes in and out are LPS. Projections are line integrals
``[angle, v, u]``. See docs/imaging.md.
"""

from igrt.imaging.errors import (
    DetectorTooSmallError,
    ImagingFormatError,
    ImagingGeometryError,
    ProjectionDataError,
)
from igrt.imaging.drr import DRRPose, gantry_kv_pose, stereo_kv_pair
from igrt.imaging.fdk import ReconGrid, fdk, mu_to_hu
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement, circular_geometry, geometry_for_field
from igrt.imaging.projector import MU_WATER_PER_MM, cast_rays_lps, forward_project
from igrt.imaging.simulate import simulate_and_reconstruct, simulate_projections

__all__ = [
    "CBCTGeometry",
    "DRRPose",
    "DetectorTooSmallError",
    "ImagingFormatError",
    "ImagingGeometryError",
    "MU_WATER_PER_MM",
    "PatientPlacement",
    "ProjectionDataError",
    "ReconGrid",
    "cast_rays_lps",
    "circular_geometry",
    "fdk",
    "forward_project",
    "gantry_kv_pose",
    "geometry_for_field",
    "mu_to_hu",
    "simulate_and_reconstruct",
    "simulate_projections",
    "stereo_kv_pair",
]
