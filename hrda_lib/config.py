"""Every configuration of an experiment, as frozen dataclasses with the paper's defaults.

`ModelConfig`: HRDA's architecture and every ablation switch of the paper (reference spec 2.1;
the rows of Tables 3-7, Figure S1 and Table S1 are changes of single fields, spec 2.7), in
full-resolution pixels of the context crop the data loader produces. `DataConfig`, `UDAConfig`
(DAFormer's self-training recipe as HRDA uses it, spec 3 and 4, or another method of Table 2, or
source-only domain generalization with SHADE) and `ExperimentConfig` (everything one run needs).
The configs of single components live beside them (`PipelineConfig` in `transforms`, `RCSConfig`
in `rcs`, `OptimizerConfig` in `optim`, `AdversarialConfig` in `alignment`, `SHADEConfig` in
`shade`). Presets (`hrda_lib.presets`) are plain functions returning these.
"""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from hrda_lib.alignment import AdversarialConfig
from hrda_lib.classes import THING_CLASSES
from hrda_lib.errors import UsageError
from hrda_lib.optim import OptimizerConfig
from hrda_lib.rcs import RCSConfig
from hrda_lib.shade import SHADEConfig
from hrda_lib.transforms import PipelineConfig


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an HRDA (or single-scale DAFormer / DeepLabV2) segmentor."""

    encoder: str = "mit_b5"  # mit_b0..mit_b5, or resnet101_v1c for DeepLabV2
    head: str = "daformer_sepaspp"  # daformer_sepaspp | dlv2 (reduced DeepLabV2, dilations 6, 12)
    num_classes: int = 19  # K
    drop_path_rate: float = 0.1  # MiT stochastic depth (timm's default 0 would be wrong)
    decoder_channels: int = 256  # DAFormer embedding/fusion width (smaller only for CPU presets)
    multi_resolution: bool = True  # False: a plain single-scale segmentor (DAFormer baseline)
    context_scale: float = 0.5  # 1/s_c: resolution at which the context crop is seen (LR)
    detail_crop_size: tuple[int, int] = (512, 512)  # detail (HR) crop, full-resolution pixels
    crop_coord_divisible: int = 8  # detail-crop offsets are multiples of this
    attention: str = "classwise"  # classwise (K channels) | single (1 channel) | fixed
    fixed_attention: float = 0.5  # attention value when attention == "fixed" (averaging)
    detail_loss_weight: float = 0.1  # lambda_d, on the detail crop's own prediction
    context_loss_weight: float = 0.0  # lambda_lr, on the attention-weighted context prediction
    blur_detail: bool = False  # "blurhr": detail input is up2(down2(image)), no new detail
    detail_slide_overlapping: bool = True  # inference detail windows at stride = crop / 2

    def __post_init__(self) -> None:
        if self.attention not in ("classwise", "single", "fixed"):
            raise UsageError(
                f"attention must be classwise, single or fixed, not {self.attention!r}"
            )
        if not 0 < self.context_scale <= 1:
            raise UsageError(f"context_scale must be in (0, 1], not {self.context_scale}")
        if self.detail_loss_weight + self.context_loss_weight > 1:
            raise UsageError("detail_loss_weight + context_loss_weight must not exceed 1")

    @property
    def fused_loss_weight(self) -> float:
        """1 - lambda_d - lambda_lr: the weight of the fused prediction's loss (0.9 in HRDA)."""
        return 1.0 - self.detail_loss_weight - self.context_loss_weight


@dataclass(frozen=True)
class DataConfig:
    """Which datasets, where, and through which pipelines."""

    source: str = "gta"  # gta | synthia | cityscapes | synthetic (GTA layout)
    target: str | None = "cityscapes"  # cityscapes | acdc | dark_zurich | synthetic (for DG:
    # only validated on) | None
    root: str = ""  # data root; "" = hrda_lib.paths.data_root() (synthetic: its default root)
    synthetic_variant: str = "quick"  # tiny | quick, for source/target "synthetic"
    synthetic_seed: int = 0  # generator seed of the synthetic benchmark
    source_pipeline: PipelineConfig = PipelineConfig(
        scale=(2560, 1440), crop_size=(1024, 1024), cat_max_ratio=0.75
    )
    target_pipeline: PipelineConfig = PipelineConfig(
        scale=(2048, 1024), crop_size=(1024, 1024), margins=(30, 240, 30, 30)
    )
    test_pipeline: PipelineConfig = PipelineConfig(scale=(2048, 1024))  # target val
    rcs: RCSConfig | None = RCSConfig()  # rare class sampling (T 0.01, 3000 px, ratio 2.0)
    sync_crop_size: tuple[int, int] | None = None  # small-crop rows: one common window cut at
    # the same offset from the source and the target crops (official `sync_crop_size`)
    num_workers: int = 1  # data loader worker processes (0 = in the training process)


@dataclass(frozen=True)
class MICConfig:
    """Masked image consistency (Hoyer et al., CVPR 2023) on top of the UDA recipe."""

    mode: str = "separatetrgaug"  # which images are masked; "separate" for ACDC / Dark Zurich
    block_size: int = 64  # px of one mask block at full resolution
    ratio: float = 0.7  # fraction of blocks masked
    weight: float = 1.0  # lambda_m


@dataclass(frozen=True)
class UDAConfig:
    """DAFormer's self-training recipe as HRDA uses it, or another method of Table 2.

    `method`: "dacs" is the self-training of DACS / DAFormer (EMA teacher, ClassMix pseudo-labels;
    its other fields below); "advseg" and "minent" train on the target with an adversarial or an
    entropy loss instead (`hrda_lib.alignment`); "source_only" never looks at target images.
    """

    method: str = "dacs"  # dacs | advseg | minent | source_only
    ema_alpha: float = 0.999  # alpha: teacher = alpha*teacher + (1-alpha)*student
    pseudo_threshold: float = 0.968  # tau of the quality weight
    color_jitter_probability: float = 0.2  # jitter when u > p (probability 0.8)
    color_jitter_strength: float = 0.2  # s: brightness/contrast/saturation/hue range
    blur: bool = True  # Gaussian blur with probability 0.5
    fd_weight: float = 0.005  # lambda_fd of the ImageNet feature distance; 0 = off
    fd_classes: tuple[int, ...] = THING_CLASSES  # classes whose features are regularized
    fd_min_ratio: float = 0.75  # purity a feature cell needs
    fd_on_detail: bool = False  # also FD on the detail crop (feature_scale "all": detail=context)
    mic: MICConfig | None = None  # masked image consistency; None = off
    entropy_weight: float = 0.001  # lambda_ent of MinEnt
    adversarial: AdversarialConfig = AdversarialConfig()  # AdvSeg's discriminator
    shade: SHADEConfig | None = None  # SHADE style hallucination (domain generalization)

    def __post_init__(self) -> None:
        if self.mic is not None and self.method != "dacs":
            raise UsageError(
                "MIC is implemented on the self-training of method 'dacs' only (the MIC paper's "
                f"own teacher for {self.method} is not); set mic=None"
            )
        if self.shade is not None and self.method != "source_only":
            raise UsageError(
                "SHADE is domain generalization: it needs method 'source_only' (no target)"
            )

    @property
    def uses_target(self) -> bool:
        """Whether training reads target images (every method but source only)."""
        return self.method != "source_only"


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs; `replace(cfg, iters=...)` makes a variant."""

    name: str = "gta_to_cityscapes_hrda"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    uda: UDAConfig = UDAConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    iters: int = 40000  # training iterations (also the schedule's length)
    batch_size: int = 2  # source images per iteration (and as many target images)
    seed: int = 0  # python / numpy / torch seed; the paper reports seeds 0, 1, 2
    pretrained: str = ""  # ImageNet weights of the encoder (mit_b5.pth); "" = random init
    test_window: tuple[int, int] = (1024, 1024)  # outer sliding window at evaluation
    test_stride: tuple[int, int] = (512, 512)  # its stride
    eval_interval: int = 4000  # iterations between validations on the target val set
    eval_max_images: int | None = None  # validate on the first N val images (None = all)
    checkpoint_interval: int = 4000  # iterations between checkpoints (and at the end)
    max_batch: int | None = None  # bound on images per encoder call at inference
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU | fp32 | bf16
    activation_checkpointing: bool = False  # recompute MiT blocks in backward (less memory)
    channels_last: bool = False  # NHWC memory format for convolutions
    compile: bool = False  # torch.compile the encoder and heads (compile time is reported)
    log_interval: int = 1  # iterations between host syncs for logging (GPU: 10-50)
    notes: str = ""  # what this preset reproduces and any deviation from the paper
    extra: dict[str, Any] = field(default_factory=dict)  # free-form tags (table, row)


def with_iters(cfg: ExperimentConfig, iters: int) -> ExperimentConfig:
    """`cfg` with a schedule of `iters` iterations, everything tied to its length scaled with it:
    the warm-up, the validation and checkpoint intervals and SHADE's prototype refresh keep
    their share of the schedule, and the EMA teacher its time constant 1 / (1 - alpha) as a share
    of the schedule (the paper's 0.999 over 40k iterations is 0.99 over 4k)."""
    if iters < 1:
        raise UsageError(f"iters must be at least 1, not {iters}")
    if iters == cfg.iters:
        return cfg
    ratio = iters / cfg.iters

    def scaled(value: int) -> int:
        return min(max(round(value * ratio), 1), iters)

    optimizer = replace(
        cfg.optimizer,
        max_iters=iters,
        warmup_iters=max(round(cfg.optimizer.warmup_iters * ratio), 1),
    )
    alpha = round(min(max(1 - (1 - cfg.uda.ema_alpha) / ratio, 0.0), 0.9999), 6)
    shade = cfg.uda.shade
    if shade is not None:
        shade = replace(shade, refresh_interval=scaled(shade.refresh_interval))
    return replace(
        cfg,
        iters=iters,
        optimizer=optimizer,
        uda=replace(cfg.uda, ema_alpha=alpha, shade=shade),
        eval_interval=scaled(cfg.eval_interval),
        checkpoint_interval=scaled(cfg.checkpoint_interval),
    )


def apply_overrides(cfg: ExperimentConfig, assignments: list[str]) -> ExperimentConfig:
    """Apply `--set field=value` overrides; dotted fields reach nested configs (model.attention).

    Values are parsed as Python literals where possible (`0.1`, `(64, 64)`, `None`, `True`) and
    must have the field's type; a wrong field, type or value raises one ValueError naming the
    assignment, the field's type and what was given.
    """
    for assignment in assignments:
        if "=" not in assignment:
            raise UsageError(f"--set expects field=value, got {assignment!r}")
        path, raw = assignment.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        try:
            cfg = _replace_path(cfg, path.split("."), value)
        except (TypeError, ValueError) as error:
            raise UsageError(f"--set {assignment}: {error}") from None
    return cfg


def config_to_plain(cfg) -> dict:
    """A config dataclass as JSON values (tuples as lists, paths as strings): what `config.json`,
    model files and training checkpoints store, and `config_from_dict` reads back."""
    return json.loads(json.dumps(asdict(cfg), default=str))


def config_from_dict(cls: type, data: dict):
    """A config dataclass from its `asdict` / JSON form: nested configs rebuilt, lists turned
    back into tuples (fields absent from `data` keep their defaults)."""
    hints = get_type_hints(cls)
    return cls(
        **{f.name: _from_plain(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}
    )


def _from_plain(annotation, value):
    if value is None:
        return None
    union = get_origin(annotation) in (Union, UnionType)
    for option in get_args(annotation) if union else (annotation,):
        if is_dataclass(option) and isinstance(value, dict):
            return config_from_dict(option, value)
        if get_origin(option) is tuple and isinstance(value, list):
            args = get_args(option)
            inner = [args[0]] * len(value) if args[-1:] == (Ellipsis,) else list(args)
            return tuple(_from_plain(a, v) for a, v in zip(inner, value, strict=False))
    return value


def _replace_path(obj, path: list[str], value):
    names = {f.name for f in fields(obj)}
    if path[0] not in names:
        raise UsageError(f"{type(obj).__name__} has no field {path[0]!r}; fields: {sorted(names)}")
    if len(path) > 1:
        inner = getattr(obj, path[0])
        if inner is None or not is_dataclass(inner):
            raise UsageError(f"{path[0]} is {inner!r}, not a config with field {path[1]!r}")
        return replace(obj, **{path[0]: _replace_path(inner, path[1:], value)})
    annotation = get_type_hints(type(obj))[path[0]]
    if not _has_type(value, annotation):
        raise TypeError(f"{path[0]} takes {_type_name(annotation)}, not {value!r}")
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, int) and not isinstance(value, bool) and _type_name(annotation) == "float":
        value = float(value)
    return replace(obj, **{path[0]: value})


def _has_type(value, annotation) -> bool:
    """Whether a literal fits a field's annotation (int for float allowed, lists for tuples)."""
    if annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_has_type(value, arg) for arg in get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, tuple | list)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_name(annotation) -> str:
    if get_origin(annotation) in (Union, UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if annotation is type(None):
        return "None"
    if get_origin(annotation) is tuple:
        return "a tuple such as (64, 64)"
    return getattr(annotation, "__name__", str(annotation))
