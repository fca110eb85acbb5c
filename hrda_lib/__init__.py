"""hrda: HRDA (context-aware high-resolution domain-adaptive semantic segmentation) and MIC in
plain PyTorch + timm.

The public model API; everything else is imported from its module (`hrda_lib.crops`, ...).
"""

from hrda_lib.checkpoints import load_model, load_official_checkpoint
from hrda_lib.config import ModelConfig
from hrda_lib.imagenet_weights import load_imagenet_encoder
from hrda_lib.inference import attention_of_predicted_class, predict_logits, slide_inference
from hrda_lib.model import (
    HRDASegmentor,
    MultiResOutput,
    Segmentor,
    build_segmentor,
    segmentation_loss,
)

__all__ = [
    "HRDASegmentor",
    "ModelConfig",
    "MultiResOutput",
    "Segmentor",
    "attention_of_predicted_class",
    "build_segmentor",
    "load_imagenet_encoder",
    "load_model",
    "load_official_checkpoint",
    "predict_logits",
    "segmentation_loss",
    "slide_inference",
]
