"""Spatial Registration (REG) objects carrying a rigid transform between two frames of reference.

DICOM semantics: each RegistrationSequence item gives a 4x4 Frame of
Reference Transformation Matrix mapping coordinates of that item's frame of
reference into the *registered* frame of reference (the object's own
FrameOfReferenceUID). igrt writes two items: the registered frame with the
identity, and the source frame with ``transform`` (source LPS mm -> registered
LPS mm). An igrt `RegistrationResult` maps planning points to daily points,
so write it with ``source_for_uid`` = planning frame and ``registered_for_uid``
= daily frame (or its inverse the other way round).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from igrt.geometry import RigidTransform
from igrt.io.dicom.common import (
    quiet,
    SPATIAL_REGISTRATION_STORAGE,
    PatientInfo,
    ds_number,
    floats,
    modality_of,
    new_dataset,
    read_dataset,
    require,
    save,
)
from igrt.io.dicom.errors import MissingTagError, NotDicomError, UnsupportedDicomError

_DCM_CODE = "DCM"


@dataclass(frozen=True, eq=False)
class SpatialRegistration:
    """A read REG: transforms from each source frame of reference into the registered one."""

    path: Path | None
    registered_for_uid: str
    transforms: dict[str, RigidTransform]  # source FoR UID -> transform into the registered FoR
    sop_instance_uid: str
    patient_id: str = ""
    description: str = ""

    def transform_from(self, source_for_uid: str) -> RigidTransform:
        """Transform mapping ``source_for_uid`` coordinates (LPS mm) into the registered frame."""
        if source_for_uid == self.registered_for_uid:
            return RigidTransform.identity()
        try:
            return self.transforms[source_for_uid]
        except KeyError:
            raise MissingTagError(
                f"the registration holds no transform from frame {source_for_uid}; it has {', '.join(self.transforms) or 'none'}", self.path
            ) from None


def _matrix_item(for_uid: str, matrix: np.ndarray, series: tuple[str, Sequence[str], str] | None) -> Dataset:
    item = Dataset()
    item.FrameOfReferenceUID = for_uid
    if series is not None:
        sop_class, sop_uids, _series_uid = series
        refs = []
        for uid in sop_uids:
            r = Dataset()
            r.ReferencedSOPClassUID = sop_class
            r.ReferencedSOPInstanceUID = uid
            refs.append(r)
        item.ReferencedImageSequence = DicomSequence(refs)
    m = Dataset()
    m.FrameOfReferenceTransformationMatrixType = "RIGID"
    m.FrameOfReferenceTransformationMatrix = [ds_number(float(v)) for v in np.asarray(matrix, float).reshape(-1)]
    mr = Dataset()
    # CID 7100 "RCS Registration Method Type": the identity item needs no method.
    if not np.allclose(matrix, np.eye(4)):
        code = Dataset()
        code.CodeValue = "125024"
        code.CodingSchemeDesignator = _DCM_CODE
        code.CodeMeaning = "Image Content-based Alignment"
        mr.RegistrationTypeCodeSequence = DicomSequence([code])
    else:
        mr.RegistrationTypeCodeSequence = DicomSequence([])
    mr.MatrixSequence = DicomSequence([m])
    item.MatrixRegistrationSequence = DicomSequence([mr])
    return item


def write_spatial_registration(
    transform: RigidTransform,
    path: str | os.PathLike,
    patient: PatientInfo,
    registered_for_uid: str,
    source_for_uid: str,
    registered_images: tuple[str, Sequence[str], str] | None = None,
    source_images: tuple[str, Sequence[str], str] | None = None,
    description: str = "igrt rigid registration",
    series_number: int = 10,
) -> str:
    """Write a REG whose ``transform`` maps ``source_for_uid`` LPS mm into ``registered_for_uid``.

    ``*_images`` optionally reference the image series: (SOP class UID,
    SOP instance UIDs, series UID). Returns the SOP Instance UID.
    """
    if registered_for_uid == source_for_uid:
        raise UnsupportedDicomError("a spatial registration needs two different frames of reference")
    info = PatientInfo(patient.patient_id, patient.patient_name, patient.study_uid, registered_for_uid, patient.study_id, patient.study_description)
    ds = new_dataset(SPATIAL_REGISTRATION_STORAGE, "REG", info, generate_uid(), series_number, description[:64])
    ds.InstanceNumber = 1
    ds.DeviceSerialNumber = "0"  # Enhanced General Equipment module (type 1)
    ds.ContentDate = ds.InstanceCreationDate
    ds.ContentTime = ds.InstanceCreationTime
    ds.ContentLabel = "IGRT_REG"
    ds.ContentDescription = description[:64]
    ds.ContentCreatorName = "igrt"
    ds.RegistrationSequence = DicomSequence(
        [_matrix_item(registered_for_uid, np.eye(4), registered_images), _matrix_item(source_for_uid, transform.matrix, source_images)]
    )
    refs = []
    for imgs in (registered_images, source_images):
        if imgs is not None:
            se = Dataset()
            se.SeriesInstanceUID = imgs[2]
            inst = []
            for uid in imgs[1]:
                r = Dataset()
                r.ReferencedSOPClassUID = imgs[0]
                r.ReferencedSOPInstanceUID = uid
                inst.append(r)
            se.ReferencedInstanceSequence = DicomSequence(inst)
            refs.append(se)
    if refs:  # Common Instance Reference module (the images are taken to be in this study)
        ds.ReferencedSeriesSequence = DicomSequence(refs)
    save(ds, path)
    return str(ds.SOPInstanceUID)


@quiet
def read_spatial_registration(path: str | os.PathLike, ds: Dataset | None = None) -> SpatialRegistration:
    """Read a rigid Spatial Registration object (igrt's or another system's)."""
    p = Path(path)
    ds = ds if ds is not None else read_dataset(p)
    if modality_of(ds) != "REG":
        raise NotDicomError(f"expected a Spatial Registration, found {modality_of(ds)}; give the REG file", p)
    registered = str(require(ds, "FrameOfReferenceUID", p, "the Spatial Registration"))
    transforms: dict[str, RigidTransform] = {}
    for item in require(ds, "RegistrationSequence", p, "the Spatial Registration"):
        for_uid = str(require(item, "FrameOfReferenceUID", p, "a RegistrationSequence item"))
        total = np.eye(4)
        for mr in item.get("MatrixRegistrationSequence", []):
            for m in mr.get("MatrixSequence", []):
                kind = str(m.get("FrameOfReferenceTransformationMatrixType", "RIGID")).upper()
                if kind not in ("RIGID", "RIGID_SCALE"):
                    raise UnsupportedDicomError(f"registration matrix type {kind}; igrt reads rigid registrations only", p)
                mat = floats(require(m, "FrameOfReferenceTransformationMatrix", p, "a MatrixSequence item"), 16, "FrameOfReferenceTransformationMatrix", p)
                # Matrices of one item apply in sequence order.
                total = mat.reshape(4, 4) @ total
        if for_uid == registered and np.allclose(total, np.eye(4), atol=1e-9):
            continue
        transforms[for_uid] = RigidTransform(total)
    return SpatialRegistration(
        path=p,
        registered_for_uid=registered,
        transforms=transforms,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        patient_id=str(ds.get("PatientID", "")),
        description=str(ds.get("ContentDescription", "")),
    )
