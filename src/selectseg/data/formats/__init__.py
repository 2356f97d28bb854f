"""Dataset formats: one reader module per format behind the FORMATS registry (:mod:`.registry`), NIfTI helpers
shared by the 3-D readers (:mod:`._nifti`), and the writer of the nnU-Net / MSD layout (:mod:`.msd_write`).

Importing this package registers every format; ``format="auto"`` tries them in their detection order.
"""

# isort: off
from .registry import FORMATS, DatasetFormat, detection_order, get_format, list_formats, load_dataset, register_format
from . import msd, glas, riga, qubiq, brats, mmwhs, hecktor  # noqa: F401  (registration)
from .msd_write import write_msd_dataset
# isort: on

__all__ = [
    "FORMATS",
    "DatasetFormat",
    "detection_order",
    "get_format",
    "list_formats",
    "load_dataset",
    "register_format",
    "write_msd_dataset",
]
