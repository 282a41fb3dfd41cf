"""Save and restore the full training state of an aihwkit analog model, for per-epoch trial checkpoints.

aihwkit 1.1.0's own restore (``load_state_dict``, deepcopy, pickling) is lossy for training tiles: it programs the
weights again, which for a transfer compound (c-TTv2) zeroes the fast device, and with write noise
(``write_noise_std > 0``) it adds a fresh noise sample to the persistent weights of every device on each restore.
Its ``state_dict`` also pickles RPU-config objects, so ``torch.load(weights_only=True)`` refuses it.

Here a state is a dict of tensors and plain values only. Per tile it holds every hidden-parameter plane
(``get_hidden_parameters``), the C++ extra state (``dump_extra``: chopper signs, transfer/update counters,
auto-scale running values, slice indices, learning rate, ...) and the learning rate. The restore order makes all of it
come back bit-identical, with two exceptions that aihwkit 1.1.0 gives no way around, both reported by
``load_analog_state``:

- with write noise, the *apparent* weights of devices other than the visible one (c-TTv2: ``hidden_weights_0``, the
  fast device's read-out) are persistent weight plus freshly drawn write noise: same distribution, not same values;
- aihwkit clips persistent weights to the device bounds when setting them, while training lets the reference carry a
  saturated weight up to ``|reference|`` past a bound; such elements (a few in 10^4) come back clipped.

The tiles' random number generators are seeded from the clock and cannot be read or set, so continued training is
never bit-identical, not even between two exact copies of a tile.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from aihwkit import __version__ as AIHWKIT_VERSION
from aihwkit.simulator.tiles.module import TileModule
from aihwkit.simulator.tiles.rpucuda import RPUCudaSimulatorTileWrapper

from ._errors import TileStateError

FORMAT = "analog-sweep/tile-state/1"
STATIC_FORMAT = "analog-sweep/tile-state-static/1"

# Device-to-device planes: drawn once when the tile is built, never changed by training.
_STATIC_PLANES = frozenset(
    {
        "max_bound",
        "min_bound",
        "dwmin_up",
        "dwmin_down",
        "decay_scales",
        "diffusion_rates",
        "reset_bias",
        "drift_nu",
        "reference",
    }
)
_ANALOG_STATE_SUFFIX = "analog_tile_state"


def _plane_kind(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


def _tiles(model: torch.nn.Module) -> dict[str, RPUCudaSimulatorTileWrapper]:
    tiles = {}
    for name, module in model.named_modules():
        if isinstance(module, RPUCudaSimulatorTileWrapper):
            tiles[name] = module
        elif isinstance(module, TileModule):
            raise TileStateError(f"tile {name!r} ({type(module).__name__}) keeps no C++ state; not supported")
    return tiles


def _is_compound(names: list[str]) -> bool:
    return any(_plane_kind(n) == "hidden_weights" for n in names)


def _fully_hidden_index(extra: dict[str, list[float]]) -> int | None:
    """Index of the device that *is* the visible weight (c-TTv2: gamma = 0), or None."""
    gammas = next((v for k, v in extra.items() if k.endswith("rpu_device.reduce_weightening")), None)
    if gammas and all(g == 0.0 for g in gammas[:-1]) and gammas[-1] == 1.0:
        return len(gammas) - 1
    return None


def analog_state(model: torch.nn.Module) -> dict[str, Any]:
    """Snapshot of every analog tile's training state, as tensors and plain values (``weights_only``-loadable)."""
    tiles = {}
    for name, tile in _tiles(model).items():
        names = list(tile.tile.get_hidden_parameter_names())
        if any(_plane_kind(n) == "persistent_weights" for n in names) and not _is_compound(names):
            raise TileStateError(f"tile {name!r}: write noise on a single device cannot be restored exactly")
        planes = tile.tile.get_hidden_parameters().detach().cpu()
        entry = {
            "planes": {n: planes[i].clone() for i, n in enumerate(names)},
            "plane_names": names,
            "extra": dict(tile.tile.dump_extra()),  # lists of floats: exact, and one pickle record, not one per key
            "learning_rate": float(tile.tile.get_learning_rate()),
        }
        if not _is_compound(names):
            # A compound rebuilds its visible weights from the device planes; a single device keeps them itself.
            entry["weights"] = tile.tile.get_weights().detach().cpu().clone()
        tiles[name] = entry
    return {"format": FORMAT, "aihwkit": AIHWKIT_VERSION, "tiles": tiles}


def _without_write_noise_on_set(device: Any) -> None:
    if hasattr(device, "apply_write_noise_on_set"):
        device.apply_write_noise_on_set = False
    for sub in getattr(device, "unit_cell_devices", []):
        _without_write_noise_on_set(sub)
    if hasattr(device, "device"):
        _without_write_noise_on_set(device.device)


def _load_tile(name: str, tile: RPUCudaSimulatorTileWrapper, entry: dict[str, Any]) -> dict[str, tuple[int, float]]:
    if tile.is_cuda:
        raise TileStateError(f"tile {name!r} is on CUDA: load the state into the CPU model, then move it")
    names = list(tile.tile.get_hidden_parameter_names())
    if names != entry["plane_names"]:
        raise TileStateError(f"tile {name!r}: hidden planes {entry['plane_names']} saved, model has {names}")
    shape = (tile.tile.get_d_size(), tile.tile.get_x_size())
    for plane_name, plane in entry["planes"].items():
        if tuple(plane.shape) != shape:
            raise TileStateError(f"tile {name!r}: plane {plane_name} has shape {tuple(plane.shape)}, tile {shape}")
    extra = entry["extra"]
    planes = torch.stack([entry["planes"][n] for n in names]).to(tile.get_dtype())
    noisy = [n for n in names if _plane_kind(n) == "persistent_weights"]

    if noisy:
        # Setting hidden parameters programs each device's persistent weight from its apparent weight plane,
        # adding write noise twice when ``apply_write_noise_on_set``; a tile built without it takes the
        # persistent planes as given. The flag only acts when weights are set, never during training.
        config = copy.deepcopy(tile.rpu_config)
        _without_write_noise_on_set(config.device)
        tile.tile = tile._recreate_simulator_tile(shape[1], shape[0], config)
        for persistent in noisy:
            planes[names.index(persistent.replace("persistent_weights", "hidden_weights"))] = planes[
                names.index(persistent)
            ]
    if "weights" in entry:
        tile.tile.set_weights(entry["weights"].to(tile.get_dtype()))
    tile.tile.set_hidden_parameters(planes)
    if noisy:
        if not any(entry["planes"][n].any() for n in names if _plane_kind(n) == "diffusion_rates"):
            # With zero diffusion rates this only draws fresh write noise onto every apparent weight; with
            # diffusion it would move the persistent weights, so those apparent weights stay noise-free.
            tile.tile.diffuse_weights()
        last = _fully_hidden_index(extra)
        if last is not None:
            # The last device's apparent weight is the tile's weight memory: share it, then write it exactly.
            memory = torch.empty(shape, dtype=tile.get_dtype())
            tile.tile.set_shared_weights(memory)
            memory.copy_(entry["planes"][f"hidden_weights_{last}"])
            tile._exact_weight_memory = memory  # the C++ tile now reads and writes this tensor
    tile.tile.load_extra(extra, True)
    tile.tile.set_learning_rate(entry["learning_rate"])

    restored = tile.tile.get_hidden_parameters()
    report = {}
    for i, plane_name in enumerate(names):
        difference = (restored[i] - entry["planes"][plane_name].to(restored.dtype)).abs()
        if difference.any():
            report[f"{name}.{plane_name}"] = (int((difference > 0).sum()), float(difference.max()))
    return report


def load_analog_state(model: torch.nn.Module, state: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """Apply ``analog_state`` output to a model freshly built from the same spec (CPU), as exactly as aihwkit allows.

    Returns what did not come back bit-identical, as ``{"tile.plane": (elements that differ, max |difference|)}``,
    for the trial's log: with write noise the non-visible apparent weights (redrawn noise), and persistent weights
    saturated at a bound beyond which the reference lets training carry them (aihwkit clips those on set, by at most
    ``|reference|``).
    """
    _check_format(state, FORMAT)
    tiles = _tiles(model)
    if set(tiles) != set(state["tiles"]):
        raise TileStateError(f"analog tiles differ: saved {sorted(state['tiles'])}, model {sorted(tiles)}")
    report = {}
    for name, tile in tiles.items():
        report.update(_load_tile(name, tile, state["tiles"][name]))
    return report


def digital_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's ``state_dict`` without aihwkit's pickled tile states: digital layers, digital biases."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith(_ANALOG_STATE_SUFFIX)}


def model_state(model: torch.nn.Module) -> dict[str, Any]:
    """Analog tile states plus the digital ``state_dict`` entries: everything a trial checkpoint needs of a model."""
    return {**analog_state(model), "digital": digital_state(model)}


def load_model_state(model: torch.nn.Module, state: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """Inverse of ``model_state`` on a freshly built model; returns ``load_analog_state``'s report."""
    report = load_analog_state(model, state)
    result = model.load_state_dict(state["digital"], strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(_ANALOG_STATE_SUFFIX)]
    if missing or result.unexpected_keys:
        raise TileStateError(f"digital state mismatch: missing {missing}, unexpected {result.unexpected_keys}")
    return report


def _digest(static_tiles: dict[str, dict[str, torch.Tensor]]) -> str:
    sha = hashlib.sha256()
    for tile_name in sorted(static_tiles):
        for plane_name in sorted(static_tiles[tile_name]):
            sha.update(f"{tile_name}/{plane_name}".encode())
            sha.update(static_tiles[tile_name][plane_name].contiguous().numpy().tobytes())
    return sha.hexdigest()


def split_static(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split off the device-to-device planes, which training never changes, so a trial saves them once, not per epoch.

    Returns ``(static, dynamic)``; ``join_static`` puts them back together and refuses parts of different tiles.
    """
    _check_format(state, FORMAT)
    static_tiles, dynamic_tiles = {}, {}
    for name, entry in state["tiles"].items():
        static_tiles[name] = {n: p for n, p in entry["planes"].items() if _plane_kind(n) in _STATIC_PLANES}
        dynamic_tiles[name] = {
            **entry,
            "planes": {n: p for n, p in entry["planes"].items() if n not in static_tiles[name]},
        }
    digest = _digest(static_tiles)
    static = {"format": STATIC_FORMAT, "digest": digest, "tiles": static_tiles}
    return static, {**state, "tiles": dynamic_tiles, "static_digest": digest}


def join_static(static: dict[str, Any], dynamic: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``split_static``."""
    _check_format(static, STATIC_FORMAT)
    _check_format(dynamic, FORMAT)
    if dynamic.get("static_digest") != static["digest"]:
        raise TileStateError("static and per-epoch tile states come from different models")
    tiles = {
        name: {**entry, "planes": {**static["tiles"][name], **entry["planes"]}}
        for name, entry in dynamic["tiles"].items()
    }
    joined = {**dynamic, "tiles": tiles}
    del joined["static_digest"]
    return joined


def _check_format(state: Any, expected: str) -> None:
    if not isinstance(state, dict) or state.get("format") != expected:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise TileStateError(f"expected a {expected!r} state, got {found!r}")


def save_state(state: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename, so an interrupted save never leaves a partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a saved state with ``weights_only=True``; a damaged file raises ``TileStateError`` naming the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for damaged files
        raise TileStateError(f"cannot read tile state {os.fspath(path)!r}: {error}") from error
    if not isinstance(state, dict) or state.get("format") not in (FORMAT, STATIC_FORMAT):
        raise TileStateError(f"{os.fspath(path)!r} holds no analog-sweep tile state")
    return state
