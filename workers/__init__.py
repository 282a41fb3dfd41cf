"""Workers: one trial of a sweep, from its config to its per-epoch reports, on the CPU or a GPU.

A trial (``run_trial``) loads its data (the embedded digits or CIFAR files), makes a timm Swin model by name
(``create_model``), takes a cached digitally pretrained body (``pretrained_model``), converts it to analog tiles
(aihwkit, ``build_rpu_config``), fine-tunes it with c-TTv2 and reports every epoch (``EpochReport``), checkpointing
as it goes (``TrialCheckpoint``). Configs (``TrialConfig`` and its parts) are plain dataclasses; this package
imports none of the project's other packages.
"""

from analog_sweep._exports import lazy_exports

_EXPORTS = {
    "_activity": ("measure", "reference_weights"),
    "_checkpoint": ("TrialCheckpoint",),
    "_config": (
        "ALGORITHMS",
        "ALGORITHM_SETTINGS",
        "AlgorithmConfig",
        "DEFAULT_DEVICE",
        "DEVICE_AXES",
        "DataConfig",
        "DevicePoint",
        "LR_SCHEDULES",
        "MODES",
        "MappingConfig",
        "ModelConfig",
        "PRETRAIN_OPTIMIZERS",
        "PretrainConfig",
        "TABLE_I",
        "TrialConfig",
        "content_hash",
        "pretrain_key",
    ),
    "_data": (
        "CIFAR100_FOLDER",
        "CIFAR10_FOLDER",
        "CIFAR10_TRAIN_FILES",
        "DATA_ROOT_ENV",
        "DIGITS_TEST_FRACTION",
        "batches",
        "download_cifar",
        "load_target",
        "load_target_splits",
        "target_classes",
    ),
    "_errors": (
        "ConfigError",
        "CorruptFileError",
        "DataError",
        "ModelError",
        "TileBackendError",
        "TileStateError",
        "TrainingDiverged",
    ),
    "_devices": ("ANALOG_CONVERSION", "build_rpu_config", "place_on_device"),
    "_metrics": ("EpochReport", "test_error_percent"),
    "_models": ("PRESETS", "create_model"),
    "_pretrain": ("CacheEntry", "cache_entry", "find_cached", "lock_held", "pretrained_model", "read_progress"),
    "_rpu_json": ("trial_rpu_config_json",),
    "_trial": ("build_model", "epoch_generator", "make_optimizer", "run_trial"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
