"""The sweep spec: its fields, their defaults, and the validation that turns a raw YAML mapping into a frozen tree.

Validation is strict and happens before anything runs: every field is type- and range-checked, unknown fields are
refused, and the first problem becomes a one-line ``SpecError`` naming the file, the field path and what is wrong.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from analog_sweep.sweeps._errors import FieldError, SpecError
from analog_sweep.workers import (
    ALGORITHM_SETTINGS,
    ALGORITHMS,
    DEFAULT_DEVICE,
    DEVICE_AXES,
    LR_SCHEDULES,
    MODES,
    PRESETS,
    PRETRAIN_OPTIMIZERS,
    TABLE_I,
    AlgorithmConfig,
    DataConfig,
    DataError,
    DevicePoint,
    MappingConfig,
    ModelConfig,
    ModelError,
    PretrainConfig,
    create_model,
)

DATASETS = ("digits", "cifar")
EXPANSIONS = ("one_at_a_time", "grid")
LR_METHODS = ("tpe", "grid")
# How a TPE search starts at a point (``orchestrator._warm_start``): from the best learning rate of its finished
# neighbours (base point first, then outward along each axis), or from the sampler alone.
WARM_STARTS = ("neighbours", "none")
DEFAULT_WARM_START = "neighbours"
# How many sampler trials in a row a warm-started point runs without beating its best before its search ends
# (``orchestrator._search``); None: every point uses its whole ``trials_per_point``.
DEFAULT_PATIENCE = 1
PATIENCE_OFF = "none"  # the spelling of "no patience" (null means the default, as for every field)
# Where a point's learning rate and epoch are chosen: the held-out validation split, or the test set (the paper's
# rule: the best of several test errors, an optimistic estimate).
SELECTION_SPLITS = ("validation", "test")
DEFAULT_VALIDATION_FRACTION = 0.1
# Each pruner's options and the smallest value each accepts (all are integers).
PRUNER_OPTIONS: dict[str, dict[str, int]] = {
    "none": {},
    "median": {"n_startup_trials": 0, "n_warmup_steps": 0},
    "hyperband": {"min_resource": 1, "reduction_factor": 2},
    "successive_halving": {"min_resource": 1, "reduction_factor": 2},
}
# Table I settings that are numbers, with their allowed range (low, high, high inclusive); the rest are booleans.
SETTING_RANGES: dict[str, tuple[float, float, bool]] = {
    "transfer_every": (0.0, math.inf, False),
    "auto_granularity": (0.0, math.inf, False),
    "momentum": (0.0, 1.0, False),
    "in_chop_prob": (0.0, 1.0, True),
    "auto_momentum": (0.0, 1.0, True),
    "fast_lr": (0.0, math.inf, False),
}
# ``algorithm.mapping`` (``workers._config.MappingConfig``): omega is a device value, at most the devices' range.
MAPPING_FIELDS = tuple(f.name for f in fields(MappingConfig))
MAX_OMEGA = 2.0
DEFAULT_IMAGE_SIZE = {"digits": 16, "cifar": 32}
DEFAULT_MAX_POINTS = 10_000
DEFAULT_TRIALS_PER_POINT = 8
DEFAULT_LR_RANGE = (1e-3, 0.3)  # around Table I's 0.01 and the best analog rate at micro scale, 0.05
# Counts, sizes and seeds stay below this, so every later product of them is an ordinary float.
MAX_INT = 2**31 - 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")

ALGORITHM_FIELDS = ("name", "settings", "mapping", "freeze_analog")
TOP_FIELDS = (
    "name", "data", "model", "pretrain", "modes", "algorithm", "algorithms", "device", "axes", "lr_search",
    "epochs", "batch_size", "lr_schedule", "seeds", "selection", "resources", "max_retries", "max_points",
    "profile",
)  # fmt: skip
# ``profile``: which ``--profile`` made the spec (``sweeps._profiles.PROFILES`` sets it), so the store and every
# report know a smoke run for what it is: a test of the plumbing, not a result.
PROFILE_NAMES = ("smoke",)
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "data": (
        "dataset", "classes", "data_root", "image_size", "train_limit", "limit", "test_limit", "source_limit",
        "split_seed", "validation_fraction",
    ),
    "model": ("preset", "overrides"),
    "pretrain": ("optimizer", "lr", "weight_decay", "momentum", "epochs", "batch_size", "augment", "seed"),
    "algorithm": ALGORITHM_FIELDS,
    "device": DEVICE_AXES,
    "axes": ("expand", *DEVICE_AXES, "refine"),
    "lr_search": (
        "method", "low", "high", "values", "trials_per_point", "pruner", "pruner_options", "seed", "warm_start",
        "patience",
    ),
    "resources": ("cpu", "gpu"),
    "selection": ("split", "per_seed"),
}  # fmt: skip
# Free-form mappings inside a section, with the keys they accept (None: any key, checked where it is used).
OPEN_MAPPINGS: dict[str, tuple[str, ...] | None] = {
    "model.overrides": None,
    "algorithm.settings": ALGORITHM_SETTINGS,
    "algorithm.mapping": MAPPING_FIELDS,
    "lr_search.pruner_options": tuple(sorted({name for opts in PRUNER_OPTIONS.values() for name in opts})),
}


@dataclass(frozen=True)
class DataSpec:
    """The data set and the target tasks, one class set each (canonical class names)."""

    dataset: str
    tasks: tuple[tuple[str, ...], ...]
    data_root: str | None
    image_size: int
    train_limit: int | None
    test_limit: int | None
    source_limit: int | None
    split_seed: int
    validation_fraction: float

    def config(self, classes: tuple[str, ...]) -> DataConfig:
        return DataConfig(
            dataset=self.dataset,
            classes=classes,
            data_root=self.data_root,
            image_size=self.image_size,
            train_limit=self.train_limit,
            test_limit=self.test_limit,
            source_limit=self.source_limit,
            split_seed=self.split_seed,
            validation_fraction=self.validation_fraction,
        )


@dataclass(frozen=True)
class PretrainSpec:
    """Pretraining settings; ``seed`` None means each sweep seed pretrains its own model with that seed."""

    settings: PretrainConfig
    seed: int | None


@dataclass(frozen=True)
class RefineSpec:
    """Adaptive refinement of one swept axis (``axes.refine``): after the grid, up to ``rounds`` rounds, each adding
    ``points`` new axis values inside the current critical point's 95 % interval, per mode and task, until the
    interval is narrower than ``width`` (axis units; None: run every round)."""

    axis: str
    points: int
    rounds: int
    width: float | None


@dataclass(frozen=True)
class AxesSpec:
    """The swept device axes (in ``DEVICE_AXES`` order), how they combine, and which are refined."""

    expand: str
    values: tuple[tuple[str, tuple[float, ...]], ...]
    refine: tuple[RefineSpec, ...] = ()


@dataclass(frozen=True)
class LrSearchSpec:
    """The learning-rate search run at every point: TPE over [low, high] (log scale) or a fixed grid of values."""

    method: str
    low: float | None
    high: float | None
    values: tuple[float, ...]
    trials_per_point: int
    pruner: str
    pruner_options: tuple[tuple[str, int], ...]
    seed: int
    # ``neighbours`` (default): a TPE point's first trial runs the best learning rate of its finished neighbours, and
    # the median pruner compares a trial with the other trials of its own point (``orchestrator._warm_start``).
    warm_start: str = DEFAULT_WARM_START
    # With warm starts: a point's search ends once this many of its sampler trials in a row (after its warm-start
    # trial, or its spread start-up trials where it got no warm-start rate) have not beaten its best; None: the whole
    # ``trials_per_point``.
    patience: int | None = DEFAULT_PATIENCE

    @property
    def startup_trials(self) -> int:
        """TPE's start-up trials at a point (``trials_per_point // 2``, 1 to 10): drawn at random, or spread over the
        range where the point got no warm-start rate (``orchestrator._search``), before TPE models the rates."""
        return max(1, min(10, self.trials_per_point // 2))


@dataclass(frozen=True)
class SelectionSpec:
    """How each point's learning rate and epoch are chosen: on the ``validation`` split (its lowest validation
    error) or on ``test`` (the paper's rule: the lowest final test error). ``per_seed`` False: points that differ only
    by seed share one choice, made on their mean error."""

    split: str
    per_seed: bool


@dataclass(frozen=True)
class ResourcesSpec:
    """What one trial reserves; ``gpu`` may be a fraction (e.g. 0.25: four trials share a GPU)."""

    cpu: float
    gpu: float


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep. ``raw`` is the mapping as submitted (overrides applied), kept for the result store."""

    name: str
    data: DataSpec
    model: ModelConfig
    pretrain: PretrainSpec
    modes: tuple[str, ...]
    algorithms: tuple[AlgorithmConfig, ...]
    device: DevicePoint
    axes: AxesSpec
    lr_search: LrSearchSpec
    epochs: int
    batch_size: int
    lr_schedule: str
    seeds: tuple[int, ...]
    selection: SelectionSpec
    resources: ResourcesSpec
    max_retries: int
    max_points: int
    profile: str | None = None
    source: str = field(default="<mapping>", compare=False)
    overrides: tuple[str, ...] = field(default=(), compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def algorithm(self) -> AlgorithmConfig:
        """The first (or only) algorithm: the one a one-algorithm sweep runs."""
        return self.algorithms[0]

    @property
    def compares_algorithms(self) -> bool:
        """The spec lists several algorithms (``algorithms``), each run at every analog device point."""
        return len(self.algorithms) > 1


def show(value: Any) -> str:
    """A value as an error message quotes it: repr, so newlines stay escaped, and shortened."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long for Python to print
        text = f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


def join(path: str, key: Any) -> str:
    """The path of ``key`` inside ``path``; a key that is not plain printable text is quoted, so a message stays
    one line."""
    plain = isinstance(key, str) and key and key.isprintable() and key.strip() == key
    text = key if plain else show(key)
    return f"{path}.{text}" if path else text


def build_spec(raw: Any, *, source: str, set_by: dict[str, str] | None = None) -> SweepSpec:
    """Validate ``raw`` (a YAML mapping) into a ``SweepSpec``; the first problem raises ``SpecError``, naming the
    override behind the field when ``set_by`` (dotted path -> ``--set`` text) has one."""
    try:
        return _build(raw, source)
    except FieldError as error:
        behind = [text for path, text in (set_by or {}).items() if _within(error.path, path)]
        suffix = f" (from --set {show(behind[-1])})" if behind else ""
        raise SpecError(f"{source}: {error.path}: {error.problem}{suffix}") from None


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith((f"{outer}.", f"{outer}["))


# --- field checkers: each takes the value and its path, returns the clean value or raises FieldError --------------


def _mapping(value: Any, path: str, allowed: tuple[str, ...] | None) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise FieldError(path, f"must be a mapping, got {show(value)}")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                fields_ = f"choose from {', '.join(allowed)}" if allowed else f"{path or 'it'} has no fields here"
                raise FieldError(join(path, key), f"unknown field; {fields_}")
    return value


def _get(mapping: dict[Any, Any], name: str, default: Any = None) -> Any:
    """A field's value; null counts as omitted, so ``--set field=null`` restores the default."""
    value = mapping.get(name)
    return default if value is None else value


def _section(raw: dict[Any, Any], name: str) -> dict[Any, Any]:
    return _mapping(_get(raw, name, {}), name, SECTION_FIELDS[name])


def _integer(value: Any, path: str, minimum: int, maximum: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(path, f"must be an integer, got {show(value)}")
    if not minimum <= value <= maximum:
        raise FieldError(path, f"must be an integer from {minimum} to {maximum}, got {show(value)}")
    return value


def _optional_integer(value: Any, path: str, minimum: int) -> int | None:
    return None if value is None else _integer(value, path, minimum)


def _number(value: Any, path: str, low: float = 0.0, high: float = math.inf, *, low_open: bool = False,
            high_open: bool = True) -> float:  # fmt: skip
    """A finite real number in the range; ints are accepted and become floats."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(path, f"must be a number, got {show(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FieldError(path, f"must be a finite number, got {show(value)}")
    if number < low or (low_open and number == low):
        kind = "positive" if low == 0 and low_open else "non-negative" if low == 0 else f"at least {low:g}"
        raise FieldError(path, f"must be a {kind} number, got {show(value)}")
    if number > high or (high_open and number == high):
        raise FieldError(path, f"must be {'below' if high_open else 'at most'} {high:g}, got {show(value)}")
    return number


def _choice(value: Any, path: str, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise FieldError(path, f"unknown {what} {show(value)}; choose one of {', '.join(choices)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise FieldError(path, f"must be a list, got {show(value)}")
    if not value:
        raise FieldError(path, "must not be empty")
    return value


def _unique(items: list[Any], path: str, what: str) -> None:
    for index, item in enumerate(items):
        if item in items[:index]:
            raise FieldError(f"{path}[{index}]", f"duplicate {what} {show(item)}")


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(path, f"must be true or false, got {show(value)}")
    return value


# --- sections -------------------------------------------------------------------------------------------------------


def _name(value: Any) -> str:
    if value is None:
        raise FieldError("name", "required: the sweep's name (also its folder name)")
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise FieldError(
            "name",
            "must be 1-100 letters, digits, '.', '_' or '-', not starting with '.' (it names a folder), "
            f"got {show(value)}",
        )
    return value


def _data(raw: dict[Any, Any]) -> DataSpec:
    section = _section(raw, "data")
    dataset = _choice(_get(section, "dataset", "digits"), "data.dataset", DATASETS, "data set")
    if _get(section, "classes") is None:
        raise FieldError("data.classes", "required: a list of class sets, e.g. [[beaver, otter]]")
    tasks = _tasks(section["classes"], dataset)
    data_root = _get(section, "data_root")
    if data_root is not None and (not isinstance(data_root, str) or not data_root or "\0" in data_root):
        raise FieldError("data.data_root", f"must be a folder path or null, got {show(data_root)}")
    if _get(section, "limit") is not None and _get(section, "train_limit") is not None:
        raise FieldError("data.limit", "is shorthand for data.train_limit; give only one of them")
    train_limit = _get(section, "train_limit", _get(section, "limit"))
    train_path = "data.train_limit" if _get(section, "train_limit") is not None else "data.limit"
    return DataSpec(
        dataset=dataset,
        tasks=tasks,
        data_root=data_root,
        image_size=_integer(_get(section, "image_size", DEFAULT_IMAGE_SIZE[dataset]), "data.image_size", 4, 1024),
        train_limit=_optional_integer(train_limit, train_path, 1),
        test_limit=_optional_integer(_get(section, "test_limit"), "data.test_limit", 1),
        source_limit=_optional_integer(_get(section, "source_limit"), "data.source_limit", 1),
        split_seed=_integer(_get(section, "split_seed", 0), "data.split_seed", 0),
        validation_fraction=_number(
            _get(section, "validation_fraction", DEFAULT_VALIDATION_FRACTION), "data.validation_fraction", 0.0, 1.0
        ),
    )


def _tasks(value: Any, dataset: str) -> tuple[tuple[str, ...], ...]:
    """Each class set checked and spelled canonically by the data module; no class twice, no set twice."""
    tasks: list[tuple[str, ...]] = []
    for index, class_set in enumerate(_list(value, "data.classes")):
        path = f"data.classes[{index}]"
        if not isinstance(class_set, list):
            raise FieldError(path, f"must be a list of class names (one task), got {show(class_set)}")
        names = []
        for position, name in enumerate(class_set):
            if isinstance(name, int) and not isinstance(name, bool):
                name = str(name)  # YAML reads the digits classes 5..9 as integers
            if not isinstance(name, str):
                raise FieldError(f"{path}[{position}]", f"must be a class name, got {show(name)}")
            names.append(name)
        try:
            from analog_sweep.workers import target_classes  # its module loads torch: only when validating

            canonical = target_classes(DataConfig(dataset=dataset, classes=tuple(names)))
        except DataError as error:
            raise FieldError(path, " ".join(str(error).removeprefix("classes: ").split())) from None
        for earlier, other in enumerate(tasks):
            if set(other) == set(canonical):
                raise FieldError(path, f"duplicate class set: same classes as data.classes[{earlier}]")
        tasks.append(canonical)
    return tuple(tasks)


def _model(raw: dict[Any, Any], image_size: int) -> ModelConfig:
    """The model preset and its keyword overrides, built once (on the CPU, without touching the global RNG) at the
    data's image size, so that a model that cannot be built is refused here, not in pretraining or a trial."""
    section = _section(raw, "model")
    preset = _choice(_get(section, "preset", "swin_micro"), "model.preset", tuple(PRESETS), "model preset")
    overrides = _get(section, "overrides")
    pairs = []
    for key, value in _mapping({} if overrides is None else overrides, "model.overrides", None).items():
        path = join("model.overrides", key)
        if not isinstance(key, str) or not key.isidentifier():
            raise FieldError(path, "keys must be keyword names")
        pairs.append((key, _override_value(value, path)))
    config = ModelConfig(preset=preset, overrides=tuple(sorted(pairs)))
    problem = _model_problem(config.preset, config.overrides, image_size)
    if problem:
        path, _, text = problem.partition(": ")
        raise FieldError(path, text)
    return config


@functools.lru_cache(maxsize=64)
def _model_problem(preset: str, overrides: tuple[tuple[str, Any], ...], image_size: int) -> str | None:
    """Why the model cannot be built (``path: problem``), or None. 0.2 s for swin_paper, once per distinct model."""
    import torch  # building the model is the only sure check of its settings; only validation needs it

    with torch.random.fork_rng(devices=[]):
        try:
            create_model(preset, num_classes=2, img_size=image_size, **dict(overrides))
        except ModelError as error:
            # One line: torch's own messages can list every overload after their first line.
            return (str(error).strip().splitlines() or [""])[0].rstrip(":")
    return None


def _override_value(value: Any, path: str, *, in_list: bool = False) -> Any:
    """Model keyword values: scalars, or lists of scalars (kept as tuples so the config stays hashable)."""
    if isinstance(value, list) and not in_list:
        return tuple(_override_value(item, f"{path}[{i}]", in_list=True) for i, item in enumerate(value))
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(path, f"must be a finite number, got {show(value)}")
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise FieldError(path, f"must be a number, text, true/false or a list of them, got {show(value)}")
    return value


def _pretrain(raw: dict[Any, Any]) -> PretrainSpec:
    section = _section(raw, "pretrain")
    defaults = PretrainConfig()

    def get(name: str) -> Any:
        return _get(section, name, getattr(defaults, name))

    seed = _get(section, "seed")
    settings = PretrainConfig(
        optimizer=_choice(get("optimizer"), "pretrain.optimizer", PRETRAIN_OPTIMIZERS, "optimizer"),
        lr=_number(get("lr"), "pretrain.lr", low_open=True),
        weight_decay=_number(get("weight_decay"), "pretrain.weight_decay"),
        momentum=_number(get("momentum"), "pretrain.momentum", 0.0, 1.0),
        epochs=_integer(get("epochs"), "pretrain.epochs", 1),
        batch_size=_integer(get("batch_size"), "pretrain.batch_size", 1),
        augment=_boolean(get("augment"), "pretrain.augment"),
        seed=0 if seed is None else _integer(seed, "pretrain.seed", 0),
    )
    return PretrainSpec(settings=settings, seed=None if seed is None else settings.seed)


def _modes(raw: dict[Any, Any]) -> tuple[str, ...]:
    if _get(raw, "modes") is None:
        return MODES
    modes = _list(raw["modes"], "modes")
    for index, mode in enumerate(modes):
        _choice(mode, f"modes[{index}]", MODES, "mode")
    _unique(modes, "modes", "mode")
    return tuple(modes)


def _algorithms(raw: dict[Any, Any]) -> tuple[AlgorithmConfig, ...]:
    """``algorithm`` (one algorithm), or ``algorithms`` (several to compare, each a mapping like ``algorithm``); with
    ``algorithms``, ``algorithm`` may hold the settings, mapping and freeze_analog they share, which each entry's own
    fields override key by key."""
    if _get(raw, "algorithms") is None:
        return (_swept(_algorithm(_section(raw, "algorithm"), "algorithm"), "algorithm"),)
    shared = _section(raw, "algorithm")
    if _get(shared, "name") is not None:
        raise FieldError(
            "algorithm.name",
            "with algorithms, name each algorithm in its entry; algorithm holds only what they share",
        )
    entries = _list(raw["algorithms"], "algorithms")
    out = []
    for index, entry in enumerate(entries):
        path = f"algorithms[{index}]"
        if isinstance(entry, str):  # a bare name: the algorithm with the shared settings
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise FieldError(
                path, f"must be an algorithm name or a mapping (name, settings, mapping), got {show(entry)}"
            )
        entry = _mapping(entry, path, ALGORITHM_FIELDS)
        if _get(entry, "name") is None:
            raise FieldError(f"{path}.name", f"missing; choose one of {', '.join(ALGORITHMS)}")
        merged = {"name": entry["name"], "freeze_analog": _get(entry, "freeze_analog", _get(shared, "freeze_analog"))}
        for part, allowed in (("settings", ALGORITHM_SETTINGS), ("mapping", MAPPING_FIELDS)):
            own = _get(entry, part)
            common = _get(shared, part)
            if own is not None:
                _mapping(own, f"{path}.{part}", allowed)
            if common is not None:
                _mapping(common, f"algorithm.{part}", allowed)
            merged[part] = {**(common or {}), **(own or {})}
        out.append(_swept(_algorithm(merged, path), path))
    _unique([config.name for config in out], "algorithms", "algorithm")
    return tuple(out)


def _swept(config: AlgorithmConfig, path: str) -> AlgorithmConfig:
    """``config``, if a sweep can run it: every sweep trial is checkpointed each epoch (and resumed from there), and
    aihwkit 1.1.0 gives no way to restore a single device's write-noise state exactly (its persistent weights are
    rebuilt from the visible ones), so plain analog SGD is refused here (``workers._tile_state``)."""
    if config.name == "sgd":
        raise FieldError(
            f"{path}.name",
            "sgd cannot run in a sweep: a single device's write-noise state cannot be checkpointed and resumed "
            "exactly; choose c-ttv2, ttv2 or agad",
        )
    return config


def _algorithm(section: dict[Any, Any], path: str) -> AlgorithmConfig:
    name = _choice(_get(section, "name", "c-ttv2"), f"{path}.name", ALGORITHMS, "algorithm")
    settings = _get(section, "settings")
    pairs = []
    for key, value in _mapping({} if settings is None else settings, f"{path}.settings", ALGORITHM_SETTINGS).items():
        where = join(f"{path}.settings", key)
        if key == "transfer_every":
            _transfer_every_sign(value, where)
        if key in SETTING_RANGES:
            low, high, high_inclusive = SETTING_RANGES[key]
            number = _number(value, where, low, high, low_open=high == math.inf, high_open=not high_inclusive)
            integral = isinstance(TABLE_I.get(key), int) and number.is_integer()
            pairs.append((key, int(number) if integral else number))
        else:
            pairs.append((key, _boolean(value, where)))
    _transfer_every_period(dict(pairs), f"{path}.settings")
    if name == "ttv2" and dict(pairs).get("in_chop_prob", 0.0) != 0.0:
        raise FieldError(f"{path}.settings.in_chop_prob", "must be 0 for ttv2 (choppers make it c-ttv2)")
    return AlgorithmConfig(
        name=name,
        settings=tuple(sorted(pairs)),
        mapping=_weight_mapping(section, path),
        freeze_analog=_boolean(_get(section, "freeze_analog", False), f"{path}.freeze_analog"),
    )


def _transfer_every_sign(value: Any, where: str) -> None:
    """``transfer_every`` 0 or below: aihwkit 1.1.0 never transfers at 0 (nor at a negative period, outside the
    chopped compounds, which read a negative value as a period set from the device's number of states), so the
    slow devices that hold the weights would never learn."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        raise FieldError(
            where,
            f"{value:g}: must be positive (0 means no transfer at all, so the weights never learn; a negative value "
            "is aihwkit's automatic period, not supported here)",
        )


def _transfer_every_period(settings: dict[str, Any], path: str) -> None:
    """``transfer_every`` must be a period aihwkit 1.1.0 runs as written.

    With ``units_in_mbatch`` false (Table I) it counts matrix-vector products (MVMs) between transfers, and aihwkit
    rounds it to the nearest whole number (``TransferRPUDevice::getTransferEvery``): below 0.5 that is 0, no
    transfer at all, and any other fraction transfers at a period other than the one written, while c-TTv2's
    ``auto_granularity`` scales the buffer's threshold by the value as written. So it must be a whole number of at
    least 1. With ``units_in_mbatch`` true it counts mini-batches and aihwkit rounds ``transfer_every x m_batch``
    MVMs up, so any positive fraction of a mini-batch is a period."""
    every = settings.get("transfer_every")
    if every is None or settings.get("units_in_mbatch", TABLE_I["units_in_mbatch"]):
        return
    where = join(path, "transfer_every")
    runs = math.floor(every + 0.5)  # aihwkit's roundf, halves away from zero
    if every < 1:
        after = "no transfer at all" if runs == 0 else f"{runs} MVM"
        raise FieldError(
            where,
            f"{every:g}: fewer than 1 MVM between transfers (with units_in_mbatch false aihwkit counts matrix-vector "
            f"products and rounds this to {after}); write a whole number of at least 1, or set units_in_mbatch: "
            "true for a fraction of a mini-batch",
        )
    if not float(every).is_integer():
        raise FieldError(
            where,
            f"{every:g}: not a whole number of MVMs between transfers (with units_in_mbatch false aihwkit rounds it to "
            f"{runs}); write {runs}, or set units_in_mbatch: true for a fraction of a mini-batch",
        )


def algorithm_from_mapping(raw: Any, *, source: str) -> AlgorithmConfig:
    """Validate an ``algorithm`` section on its own (for tools that take it from elsewhere than a spec file, such as
    ``analog-sweep trial``); raises ``SpecError`` naming ``source`` and the field."""
    try:
        return _algorithm(_mapping(raw, "algorithm", ALGORITHM_FIELDS), "algorithm")
    except FieldError as error:
        raise SpecError(f"{source}: {error.path}: {error.problem}") from None


def _weight_mapping(section: dict[Any, Any], path: str) -> MappingConfig:
    raw = _mapping(_get(section, "mapping", {}), f"{path}.mapping", MAPPING_FIELDS)
    defaults = MappingConfig()
    values = {}
    for name in MAPPING_FIELDS:
        value = _get(raw, name, getattr(defaults, name))
        where = f"{path}.mapping.{name}"
        if name == "weight_scaling_omega":
            values[name] = _number(value, where, 0.0, MAX_OMEGA, high_open=False)
        else:
            values[name] = _boolean(value, where)
    if values["out_scaling_columnwise"] and not values["learn_out_scaling"]:
        raise FieldError(f"{path}.mapping.out_scaling_columnwise", "needs learn_out_scaling: true")
    return MappingConfig(**values)


def _device(raw: dict[Any, Any]) -> DevicePoint:
    """The base device point; an axis the spec leaves out takes its value from ``DEFAULT_DEVICE`` (the same default
    as ``analog-sweep trial``)."""
    section = _section(raw, "device")
    return DevicePoint(
        **{axis: _number(_get(section, axis, getattr(DEFAULT_DEVICE, axis)), f"device.{axis}") for axis in DEVICE_AXES}
    )


def _axes(raw: dict[Any, Any]) -> AxesSpec:
    if _get(raw, "axes") is None:
        return AxesSpec(expand="one_at_a_time", values=())
    section = _mapping(raw["axes"], "axes", SECTION_FIELDS["axes"])
    expand = _choice(_get(section, "expand", "one_at_a_time"), "axes.expand", EXPANSIONS, "expansion")
    values = []
    for axis in DEVICE_AXES:
        if _get(section, axis) is not None:
            items = _list(section[axis], f"axes.{axis}")
            numbers = [_number(item, f"axes.{axis}[{i}]") for i, item in enumerate(items)]
            _unique(numbers, f"axes.{axis}", "value")
            values.append((axis, tuple(numbers)))
    if not values:
        raise FieldError("axes", f"names no axis; sweep at least one of {', '.join(DEVICE_AXES)} (or omit axes)")
    return AxesSpec(expand=expand, values=tuple(values), refine=_refine(section, [axis for axis, _ in values]))


REFINE_FIELDS = ("points", "rounds", "width")
DEFAULT_REFINE_POINTS = 4
DEFAULT_REFINE_ROUNDS = 2
MAX_REFINE = 100


def _refine(section: dict[Any, Any], swept: list[str]) -> tuple[RefineSpec, ...]:
    """``axes.refine``: axis -> {points, rounds, width}, for axes the sweep varies (in ``DEVICE_AXES`` order)."""
    raw = _mapping(_get(section, "refine", {}), "axes.refine", DEVICE_AXES)
    refined = []
    for axis in DEVICE_AXES:
        if axis not in raw:
            continue
        path = f"axes.refine.{axis}"
        if axis not in swept:
            raise FieldError(path, f"refines an axis the sweep does not vary; give its values in axes.{axis} first")
        settings = _mapping(_get(raw, axis, {}), path, REFINE_FIELDS)
        width = _get(settings, "width")
        refined.append(
            RefineSpec(
                axis=axis,
                points=_integer(_get(settings, "points", DEFAULT_REFINE_POINTS), f"{path}.points", 1, MAX_REFINE),
                rounds=_integer(_get(settings, "rounds", DEFAULT_REFINE_ROUNDS), f"{path}.rounds", 1, MAX_REFINE),
                width=None if width is None else _number(width, f"{path}.width", low_open=True),
            )
        )
    return tuple(refined)


def _lr_search(raw: dict[Any, Any], epochs: int) -> LrSearchSpec:
    section = _section(raw, "lr_search")
    method = _choice(_get(section, "method", "tpe" if _get(section, "values") is None else "grid"), "lr_search.method",
                     LR_METHODS, "search method")  # fmt: skip
    low = high = None
    values: tuple[float, ...] = ()
    if method == "tpe":
        if _get(section, "values") is not None:
            raise FieldError("lr_search.values", "belongs to method grid; tpe searches [low, high]")
        low = _number(_get(section, "low", DEFAULT_LR_RANGE[0]), "lr_search.low", low_open=True)
        high = _number(_get(section, "high", DEFAULT_LR_RANGE[1]), "lr_search.high", low_open=True)
        if low >= high:
            raise FieldError("lr_search.low", f"must be below lr_search.high ({high:g}), got {show(low)}")
        if high < low * 1.01:  # TPE's log-scale model fails (NaN) on a range this narrow
            raise FieldError(
                "lr_search.high",
                f"must be at least 1.01 x lr_search.low ({low:g}) for a search, got "
                f"{show(high)}; for one learning rate use method grid with values [{low:g}]",
            )
        trials = _integer(_get(section, "trials_per_point", DEFAULT_TRIALS_PER_POINT), "lr_search.trials_per_point", 1)
    else:
        for bound in ("low", "high"):
            if _get(section, bound) is not None:
                raise FieldError(f"lr_search.{bound}", "belongs to method tpe; grid tries lr_search.values")
        if _get(section, "values") is None:
            raise FieldError("lr_search.values", "required for method grid (the learning rates to try)")
        items = _list(section["values"], "lr_search.values")
        values = tuple(_number(item, f"lr_search.values[{i}]", low_open=True) for i, item in enumerate(items))
        _unique(list(values), "lr_search.values", "learning rate")
        trials = _integer(_get(section, "trials_per_point", len(values)), "lr_search.trials_per_point", 1)
        if trials != len(values):
            raise FieldError("lr_search.trials_per_point", f"must equal the {len(values)} grid values, got {trials}")
    pruner = _choice(_get(section, "pruner", "none"), "lr_search.pruner", tuple(PRUNER_OPTIONS), "pruner")
    options = _get(section, "pruner_options")
    allowed = tuple(PRUNER_OPTIONS[pruner])
    if not allowed and isinstance(options, dict) and options:
        key = next(iter(options))
        takes = "; ".join(f"{name}: {', '.join(opts)}" for name, opts in PRUNER_OPTIONS.items() if opts)
        raise FieldError(
            join("lr_search.pruner_options", key),
            f"pruner {pruner} takes no options; set lr_search.pruner_options=null (options by pruner: {takes})",
        )
    pairs = []
    for key, value in _mapping({} if options is None else options, "lr_search.pruner_options", allowed).items():
        minimum, maximum = PRUNER_OPTIONS[pruner][key], epochs if key == "min_resource" else MAX_INT
        pairs.append((key, _integer(value, join("lr_search.pruner_options", key), minimum, maximum)))
    warm_start = _choice(
        _get(section, "warm_start", DEFAULT_WARM_START), "lr_search.warm_start", WARM_STARTS, "warm start"
    )
    patience: int | None = DEFAULT_PATIENCE
    raw_patience = _get(section, "patience")
    if raw_patience == PATIENCE_OFF:
        patience = None
    elif raw_patience is not None:
        if method != "tpe" or warm_start != "neighbours":
            raise FieldError(
                "lr_search.patience",
                "belongs to method tpe with warm_start neighbours (it ends a "
                "warm-started point's search early); remove it",
            )
        if isinstance(raw_patience, bool) or not isinstance(raw_patience, int) or not 1 <= raw_patience <= trials:
            raise FieldError(
                "lr_search.patience",
                f"must be an integer from 1 to {trials} "
                f"(lr_search.trials_per_point), or {PATIENCE_OFF}, got {show(raw_patience)}",
            )
        patience = raw_patience
    return LrSearchSpec(
        method=method,
        low=low,
        high=high,
        values=values,
        trials_per_point=trials,
        pruner=pruner,
        pruner_options=tuple(sorted(pairs)),
        seed=_integer(_get(section, "seed", 0), "lr_search.seed", 0),
        warm_start=warm_start,
        patience=patience,
    )


def _resources(raw: dict[Any, Any]) -> ResourcesSpec:
    section = _section(raw, "resources")
    cpu = _number(_get(section, "cpu", 1), "resources.cpu", low_open=True, high=1024.0, high_open=False)
    gpu = _number(_get(section, "gpu", 0), "resources.gpu", high=64.0, high_open=False)
    if gpu > 1 and not gpu.is_integer():
        raise FieldError("resources.gpu", f"must be a fraction up to 1 or a whole number of GPUs, got {show(gpu)}")
    return ResourcesSpec(cpu=cpu, gpu=gpu)


def _seeds(raw: dict[Any, Any]) -> tuple[int, ...]:
    if _get(raw, "seeds") is None:
        return (0,)
    seeds = [_integer(seed, f"seeds[{i}]", 0) for i, seed in enumerate(_list(raw["seeds"], "seeds"))]
    _unique(seeds, "seeds", "seed")
    return tuple(seeds)


def _selection(raw: dict[Any, Any], data: DataSpec) -> SelectionSpec:
    section = _section(raw, "selection")
    split = _choice(_get(section, "split", "validation"), "selection.split", SELECTION_SPLITS, "selection split")
    per_seed = _boolean(_get(section, "per_seed", False), "selection.per_seed")
    if split == "validation" and data.validation_fraction == 0:
        raise FieldError(
            "selection.split",
            "validation needs a validation split: set data.validation_fraction above 0 (e.g. 0.1), "
            "or select on test (the paper's rule)",
        )
    return SelectionSpec(split=split, per_seed=per_seed)


def _build(raw: Any, source: str) -> SweepSpec:
    if not isinstance(raw, dict):
        raise FieldError("(top level)", f"must be a mapping of the sweep's fields, got {show(raw)}")
    _mapping(raw, "", TOP_FIELDS)
    epochs = _integer(_get(raw, "epochs", 3), "epochs", 1)
    name = _name(_get(raw, "name"))
    data = _data(raw)
    lr_search = _lr_search(raw, epochs)
    seeds = _seeds(raw)
    modes = _modes(raw)
    algorithms = _algorithms(raw)
    if len(algorithms) > 1 and not any(mode.startswith("analog") for mode in modes):
        raise FieldError("algorithms", "compares algorithms, but modes has no analog mode (analog_tl, analog_scratch)")
    return SweepSpec(
        name=name,
        data=data,
        model=_model(raw, data.image_size),
        pretrain=_pretrain(raw),
        modes=modes,
        algorithms=algorithms,
        device=_device(raw),
        axes=_axes(raw),
        lr_search=lr_search,
        epochs=epochs,
        batch_size=_integer(_get(raw, "batch_size", 8), "batch_size", 1),
        lr_schedule=_choice(_get(raw, "lr_schedule", "constant"), "lr_schedule", LR_SCHEDULES, "schedule"),
        seeds=seeds,
        selection=_selection(raw, data),
        resources=_resources(raw),
        max_retries=_integer(_get(raw, "max_retries", 2), "max_retries", 0, 100),
        max_points=_integer(_get(raw, "max_points", DEFAULT_MAX_POINTS), "max_points", 1),
        profile=None if _get(raw, "profile") is None else _choice(raw["profile"], "profile", PROFILE_NAMES, "profile"),
        source=source,
        raw=raw,
    )
