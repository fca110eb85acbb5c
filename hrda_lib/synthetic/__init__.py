"""A synthetic street-scene benchmark with HRDA's three difficulties, drawn on the CPU.

HRDA (Hoyer et al., ECCV 2022) targets (1) a domain gap between synthetic source and real target
images, (2) fine detail that low resolution loses and (3) context that small high-resolution
crops lack. Street scenes are drawn through a pinhole camera with all 19 Cityscapes classes
(`scene.py`) and rendered in a source, a target and a neutral style (`render.py`):

* the target's road and sidewalk share colour and texture, so that only layout separates them;
* thin and small objects (poles 1-3 px wide at 256x512, distant people and riders, small signs
  and lights, bicycle frames) lose their shape at half resolution;
* class frequencies are skewed like GTA's.

`benchmark.py` writes the source and target sets in the GTA and Cityscapes layouts,
`datasheet.py` measures these properties, and `pretraining.py` draws the neutral-style object
classification set that stands in for ImageNet.
"""

from hrda_lib.synthetic.benchmark import (
    GENERATOR_VERSION,
    VARIANTS,
    SyntheticConfig,
    ensure_synthetic,
    generate,
    make_sample,
    quick,
    synthetic_root,
    tiny,
)

__all__ = [
    "GENERATOR_VERSION",
    "VARIANTS",
    "SyntheticConfig",
    "ensure_synthetic",
    "generate",
    "make_sample",
    "quick",
    "synthetic_root",
    "tiny",
]
