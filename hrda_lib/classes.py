"""The 19 Cityscapes evaluation classes (train ids 0..18), their colours and groupings.

Train ids, names and colours are the Cityscapes benchmark's; the thing classes are those the
ImageNet feature distance of DAFormer/HRDA is computed on (reference spec section 3.7).
"""

from __future__ import annotations

IGNORE_INDEX: int = 255  # label value that no loss or metric counts

CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
NUM_CLASSES: int = len(CLASSES)

# RGB colour per train id (Cityscapes palette).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)

# Train ids of the "thing" classes that feature distance regularizes (spec 3.7).
THING_CLASSES: tuple[int, ...] = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)

# Classes absent from Synthia: never predicted by a Synthia-trained model (spec section 5).
SYNTHIA_ABSENT: tuple[int, ...] = (9, 14, 16)
# The 13-class Synthia mean additionally drops wall, fence and pole.
SYNTHIA13_DROPPED: tuple[int, ...] = (3, 4, 5)
