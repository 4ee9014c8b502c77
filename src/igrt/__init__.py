"""igrt: image-guided radiation therapy.

Coordinates are DICOM patient (LPS) millimetres unless a name says IEC;
angles in degrees, dose in Gy, time in seconds.
"""

__version__ = "0.1.0"
