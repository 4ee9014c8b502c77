"""Registration: where the patient is today, and whether to trust it.

* `igrt.registration.rigid3d.register_rigid`: 6DOF CT/CBCT/MR-like 3D/3D (ncc, msd, Mattes MI).
* `igrt.registration.rigid2d3d.register_2d3d` / `register_fiducials`: kV pair vs DRRs, marker match.
* `igrt.registration.deformable.register_deformable`: diffeomorphic demons, contour/dose warping.
* `igrt.registration.result.RegistrationResult`: the value object (planning -> daily, LPS mm).

Submodules are imported on use so that `RegistrationResult` stays cheap to import.
"""

from igrt.registration.errors import RegistrationError
from igrt.registration.result import RegistrationResult

__all__ = ["RegistrationError", "RegistrationResult"]
