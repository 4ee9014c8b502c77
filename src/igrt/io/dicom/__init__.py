"""DICOM RT input and output (pydicom): CT series, RTSTRUCT, RTPLAN, RTDOSE, Spatial Registration.

Readers return plain igrt objects (`Volume`, `Structure`, `Plan`) wrapped with
the UIDs that link DICOM objects; writers take them and return the UIDs they
wrote so the next object can refer to them. All coordinates are DICOM LPS mm.
"""

from igrt.io.dicom.common import PatientInfo, patient_from_dataset
from igrt.io.dicom.export import WrittenPlanningSet, write_planning_folder
from igrt.io.dicom.ct import CtSeries, load_ct_series, read_ct_series, write_ct_series
from igrt.io.dicom.loader import FolderSummary, LoadedFolder, load_folder, load_planning_folder, scan_folder, summarise
from igrt.io.dicom.reg import SpatialRegistration, read_spatial_registration, write_spatial_registration
from igrt.io.dicom.rtdose import RtDose, read_rtdose, write_rtdose
from igrt.io.dicom.rtplan import RtPlan, read_rtplan, write_rtplan
from igrt.io.dicom.rtstruct import StructureSet, rasterise, read_rtstruct, structure_volume_cc, write_rtstruct

__all__ = [
    "CtSeries",
    "FolderSummary",
    "LoadedFolder",
    "PatientInfo",
    "RtDose",
    "RtPlan",
    "SpatialRegistration",
    "StructureSet",
    "load_ct_series",
    "load_folder",
    "load_planning_folder",
    "patient_from_dataset",
    "rasterise",
    "read_ct_series",
    "read_rtdose",
    "read_rtplan",
    "read_rtstruct",
    "read_spatial_registration",
    "scan_folder",
    "structure_volume_cc",
    "summarise",
    "write_ct_series",
    "write_rtdose",
    "write_rtplan",
    "write_planning_folder",
    "write_rtstruct",
    "WrittenPlanningSet",
    "write_spatial_registration",
]
