"""Label tables: what each label value is, its CT number (HU) and texture, and which labels make a structure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    """One label of the label map: mean HU, smooth-texture SD (coarse, fine) in HU, cortical HU for bones."""

    label: int
    name: str
    hu: float
    coarse_sd: float = 8.0
    fine_sd: float = 4.0
    cortical_hu: float | None = None  # bones: HU of the outer shell
    cortical_mm: float = 0.0  # bones: shell thickness


@dataclass(frozen=True)
class StructureDef:
    """A delineated structure as the union of labels (RTROIInterpretedType + display colour)."""

    name: str
    labels: tuple[int, ...]
    roi_type: str = "ORGAN"
    colour: tuple[int, int, int] = (200, 200, 200)


AIR = 0
SKIN, FAT, MUSCLE = 1, 2, 3
# thorax
LUNG_R, LUNG_L, HEART, LIVER, OESOPHAGUS, AIRWAY, OESO_LUMEN = 4, 5, 6, 7, 8, 9, 10
CANAL, CORD, VERTEBRA, DISC, RIBS, STERNUM, AORTA, GTV_LUNG = 11, 12, 13, 14, 15, 16, 17, 18
# pelvis
BLADDER_WALL, URINE, RECTUM_WALL, RECTUM_CONTENT, PROSTATE, SEMINAL_VESICLES = 30, 31, 32, 33, 34, 35
FEMUR_L, FEMUR_R, FEMUR_SHAFT, PELVIC_BONE, SACRUM = 36, 37, 38, 39, 40

TISSUES: dict[int, Tissue] = {
    t.label: t
    for t in (
        Tissue(AIR, "air", -1000.0, 0.0, 0.0),
        Tissue(SKIN, "skin", 10.0, 6.0, 3.0),
        Tissue(FAT, "fat", -100.0, 10.0, 5.0),
        Tissue(MUSCLE, "soft tissue", 45.0, 10.0, 5.0),
        Tissue(LUNG_R, "right lung", -830.0, 30.0, 15.0),
        Tissue(LUNG_L, "left lung", -830.0, 30.0, 15.0),
        Tissue(HEART, "heart", 40.0, 6.0, 3.0),
        Tissue(LIVER, "liver", 60.0, 8.0, 4.0),
        Tissue(OESOPHAGUS, "oesophagus", 40.0, 6.0, 3.0),
        Tissue(AIRWAY, "airway lumen", -990.0, 3.0, 3.0),
        Tissue(OESO_LUMEN, "oesophageal lumen", -700.0, 50.0, 20.0),
        Tissue(CANAL, "spinal canal (CSF)", 12.0, 4.0, 2.0),
        Tissue(CORD, "spinal cord", 35.0, 4.0, 2.0),
        Tissue(VERTEBRA, "vertebra", 250.0, 40.0, 70.0, 1100.0, 1.5),
        Tissue(DISC, "intervertebral disc", 90.0, 8.0, 4.0),
        Tissue(RIBS, "ribs", 350.0, 30.0, 60.0, 1000.0, 1.2),
        Tissue(STERNUM, "sternum", 300.0, 30.0, 60.0, 1000.0, 1.5),
        Tissue(AORTA, "aorta", 45.0, 4.0, 2.0),
        Tissue(GTV_LUNG, "tumour", 30.0, 12.0, 6.0),
        Tissue(BLADDER_WALL, "bladder wall", 40.0, 6.0, 3.0),
        Tissue(URINE, "urine", 8.0, 3.0, 2.0),
        Tissue(RECTUM_WALL, "rectal wall", 40.0, 6.0, 3.0),
        Tissue(RECTUM_CONTENT, "rectal content", -150.0, 160.0, 60.0),
        Tissue(PROSTATE, "prostate", 42.0, 8.0, 4.0),
        Tissue(SEMINAL_VESICLES, "seminal vesicles", 32.0, 6.0, 3.0),
        Tissue(FEMUR_L, "left femoral head", 300.0, 40.0, 80.0, 1150.0, 2.0),
        Tissue(FEMUR_R, "right femoral head", 300.0, 40.0, 80.0, 1150.0, 2.0),
        Tissue(FEMUR_SHAFT, "femoral shaft", 120.0, 30.0, 40.0, 1350.0, 5.0),
        Tissue(PELVIC_BONE, "pelvic bone", 250.0, 40.0, 70.0, 1100.0, 2.0),
        Tissue(SACRUM, "sacrum", 230.0, 40.0, 70.0, 1050.0, 1.5),
    )
}

BONE_LABELS = tuple(t.label for t in TISSUES.values() if t.cortical_hu is not None)

LUNG_STRUCTURES = (
    StructureDef("BODY", tuple(t for t in TISSUES if t != AIR and t < 30), "EXTERNAL", (0, 255, 0)),
    StructureDef("Skin", (SKIN,), "ORGAN", (255, 220, 180)),
    StructureDef("Lung_R", (LUNG_R,), "ORGAN", (0, 160, 255)),
    StructureDef("Lung_L", (LUNG_L,), "ORGAN", (0, 100, 255)),
    StructureDef("Heart", (HEART,), "ORGAN", (255, 0, 120)),
    StructureDef("Oesophagus", (OESOPHAGUS, OESO_LUMEN), "ORGAN", (180, 120, 60)),
    StructureDef("SpinalCanal", (CANAL, CORD), "ORGAN", (255, 255, 0)),
    StructureDef("SpinalCord", (CORD,), "ORGAN", (255, 200, 0)),
    StructureDef("Vertebrae", (VERTEBRA,), "ORGAN", (240, 240, 200)),
    StructureDef("Ribs", (RIBS,), "ORGAN", (230, 230, 230)),
    StructureDef("Sternum", (STERNUM,), "ORGAN", (220, 220, 180)),
    StructureDef("Trachea", (AIRWAY,), "ORGAN", (120, 255, 255)),
    StructureDef("Aorta", (AORTA,), "ORGAN", (255, 40, 40)),
    StructureDef("Liver", (LIVER,), "ORGAN", (150, 75, 0)),
)

PELVIS_STRUCTURES = (
    StructureDef("BODY", tuple(t for t in TISSUES if t != AIR and (t < 4 or t >= 30)), "EXTERNAL", (0, 255, 0)),
    StructureDef("Skin", (SKIN,), "ORGAN", (255, 220, 180)),
    StructureDef("Bladder", (BLADDER_WALL, URINE), "ORGAN", (255, 255, 0)),
    StructureDef("Rectum", (RECTUM_WALL, RECTUM_CONTENT), "ORGAN", (150, 75, 0)),
    StructureDef("Prostate", (PROSTATE,), "ORGAN", (255, 0, 255)),
    StructureDef("SeminalVesicles", (SEMINAL_VESICLES,), "ORGAN", (200, 100, 255)),
    StructureDef("FemoralHead_L", (FEMUR_L,), "ORGAN", (0, 200, 200)),
    StructureDef("FemoralHead_R", (FEMUR_R,), "ORGAN", (0, 150, 200)),
    StructureDef("PelvicBones", (PELVIC_BONE, SACRUM), "ORGAN", (240, 240, 200)),
)
