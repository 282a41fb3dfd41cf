"""Swin vision transformers made by preset name, timm-style: a registry of defaults that keyword overrides win over.

The input size is not part of a preset: it comes from the data (``DataConfig.image_size``), so one preset serves the
embedded 16x16 digits and 32x32 CIFAR alike.

``swin_paper`` is the Swin-T layout (embed 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24)) with patch 2 and window 4,
so that 32x32 CIFAR images give 16x16 tokens. Measured with timm 1.0.31 at 32x32: 27,498,956 parameters with a
2-class head and 27,501,263 with a 5-class head; the paper reports 26,591,906 and 26,594,213. The head difference
(2,307 = 3 x 769) matches exactly, so the paper's head also reads 768 features; its body is about 0.9 M parameters
smaller than timm's Swin-T, a variant the paper does not specify further.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and timm load on first use: the presets are read without them
    from timm.models.swin_transformer import SwinTransformer

from ._errors import ModelError

PRESETS: dict[str, dict[str, Any]] = {
    # Paper scale: a GPU job (about 85 s per analog step on 2 CPU cores at 12 M parameters).
    "swin_paper": dict(patch_size=2, window_size=4, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    # 77 K parameters at 16x16: about 0.5 s per analog c-TTv2 step of batch 8 on 2 cores.
    "swin_micro": dict(patch_size=2, window_size=4, embed_dim=24, depths=(2, 2), num_heads=(2, 4)),
    # 302 K parameters at 16x16: about 2.5 s per analog step; a CPU model with more headroom.
    "swin_tiny_cpu": dict(patch_size=2, window_size=4, embed_dim=48, depths=(2, 2), num_heads=(2, 4)),
}

_OVERRIDABLE = frozenset(
    {
        "patch_size",
        "window_size",
        "embed_dim",
        "depths",
        "num_heads",
        "mlp_ratio",
        "drop_rate",
        "drop_path_rate",
        "attn_drop_rate",
        "qkv_bias",
    }
)


def create_model(preset: str, *, num_classes: int, img_size: int, **overrides: Any) -> SwinTransformer:
    """Build the preset's Swin with ``num_classes`` outputs; ``overrides`` replace preset defaults."""
    import torch
    from timm.models.swin_transformer import SwinTransformer

    if preset not in PRESETS:
        raise ModelError(f"model.preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = set(overrides) - _OVERRIDABLE
    if unknown:
        raise ModelError(
            f"model.overrides: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_OVERRIDABLE))}"
        )
    settings = dict(PRESETS[preset])
    settings.update({k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    try:
        model = SwinTransformer(img_size=img_size, in_chans=3, num_classes=num_classes, **settings)
        with torch.no_grad():  # timm checks some shapes only when data flows; find out now, not mid-trial
            model.eval()(torch.zeros(1, 3, img_size, img_size))
    except Exception as exc:  # any failure to build from these settings is a bad model config
        raise ModelError(f"model: preset {preset!r} cannot be built at img_size {img_size}: {exc}") from None
    return model.train()


def replace_head(model: SwinTransformer, num_classes: int) -> None:
    """Give a pretrained model a fresh classifier for the target task (initialised from the global torch RNG)."""
    model.reset_classifier(num_classes)
