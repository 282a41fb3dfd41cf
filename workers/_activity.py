"""Analog learning activity: did the tiles learn, and how much of the converted weights did training overwrite?

After every epoch of an analog trial the worker compares each tile's weights with the weights it held right after
conversion and weight-transfer noise (the *reference*, taken once per trial and kept in the trial's checkpoint), per
layer group of the Swin:

=========  ===========================================================================================
group      layers
=========  ===========================================================================================
``embed``  the input stem: ``patch_embed`` (the patch-embedding convolution)
``blocks`` the transformer body: every attention, MLP and patch-merging layer under ``layers``
``head``   the classifier: ``head`` (new for the target task in the TL modes)
=========  ===========================================================================================

The weights compared are the tile's visible weights in device units (aihwkit ``tile.tile.get_weights()``): for a
c-TTv2 compound the read-out of the slow, weight-holding device, which is what the forward pass multiplies with
(before the mapping's digital output scales, which are fixed unless ``learn_out_scaling``). Per group:

- ``moved``: percent of the group's analog weights whose value changed by more than ``MOVED_ATOL`` (1e-6) since the
  reference. 0 % means no transfer reached those devices' weights.
- ``rel``: mean |W - W_ref| / mean |W_ref| over the group (a ratio; mapping scales cancel within a column). Above
  about 1 the converted (pretrained) weights are no longer recognisable: write noise and updates have replaced them.
- ``transfers``: aihwkit's ``transfer_counter`` (``dump_extra``) summed over the group's tiles: how often each tile
  ran its transfer step since it was built, as aihwkit counts it. Measured, it grows by about one per ``in_size x
  transfer_every`` matrix-vector products (a pass over the columns), and not at all with ``units_in_mbatch`` while
  weights still move: compare it between trials of one setting, not as a count of writes. aihwkit 1.1.0 counts
  device pulses only on CUDA (``count_pulses``), so pulse counts are not reported.

Digital trials have no tiles: their activity is empty (None in the store). What a trial's activity means for its
numbers (barely moved, pretrained weights overwritten) is judged downstream, in ``results`` (``activity_warnings``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from aihwkit.simulator.tiles.module import TileModule

GROUPS = ("embed", "blocks", "head")
MOVED_ATOL = 1e-6
_TRANSFER_COUNTER = "rpu.rpu_device.transfer_counter"


def layer_group(name: str) -> str:
    """The group of an analog tile by its module name in a timm Swin (``patch_embed.proj...`` -> ``embed``)."""
    if name.startswith("patch_embed"):
        return "embed"
    if name.startswith("head"):
        return "head"
    return "blocks"


def _named_tiles(model: torch.nn.Module) -> Iterator[tuple[str, TileModule]]:
    for name, module in model.named_modules():
        if isinstance(module, TileModule):
            yield name, module


def tile_weights(tile: TileModule) -> torch.Tensor:
    """A tile's visible weights in device units, ``[out, in]``, on the CPU."""
    return tile.tile.get_weights().detach().cpu()


def reference_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tile's weights now (call right after conversion and transfer noise), by tile module name."""
    return {name: tile_weights(tile).clone() for name, tile in _named_tiles(model)}


@dataclass(frozen=True)
class GroupActivity:
    """One layer group's activity since conversion: ``moved`` percent, ``rel`` ratio, ``transfers`` count."""

    moved: float
    rel: float | None
    transfers: int | None


def measure(model: torch.nn.Module, reference: dict[str, torch.Tensor]) -> dict[str, GroupActivity]:
    """Activity of each group that has analog tiles, against ``reference`` (from ``reference_weights``).

    Raises ``ValueError`` when the model's tiles are not those of the reference.
    """
    moved = {g: 0 for g in GROUPS}
    count = {g: 0 for g in GROUPS}
    change = {g: 0.0 for g in GROUPS}
    size = {g: 0.0 for g in GROUPS}
    transfers: dict[str, int | None] = {g: 0 for g in GROUPS}
    seen = set()
    for name, tile in _named_tiles(model):
        if name not in reference:
            raise ValueError(f"analog tile {name!r} has no reference weights")
        seen.add(name)
        group = layer_group(name)
        delta = (tile_weights(tile) - reference[name]).abs()
        moved[group] += int((delta > MOVED_ATOL).sum())
        count[group] += delta.numel()
        change[group] += float(delta.sum(dtype=torch.float64))
        size[group] += float(reference[name].abs().sum(dtype=torch.float64))
        counter = tile.tile.dump_extra().get(_TRANSFER_COUNTER) if hasattr(tile.tile, "dump_extra") else None
        if counter and transfers[group] is not None:
            transfers[group] += int(counter[0])
        elif not counter:
            transfers[group] = None  # a tile without transfers (plain SGD): no count for the group
    if set(reference) != seen:
        raise ValueError(f"reference weights of tiles the model lacks: {sorted(set(reference) - seen)}")
    return {
        g: GroupActivity(
            moved=100.0 * moved[g] / count[g],
            rel=change[g] / size[g] if size[g] > 0 else None,  # all-zero converted weights: no relative change
            transfers=transfers[g],
        )
        for g in GROUPS
        if count[g]
    }


def activity_fields(activity: dict[str, GroupActivity]) -> dict[str, float | int | None]:
    """The flat per-epoch fields (``head_moved``, ``head_rel``, ``head_transfers``, ...); None for absent groups."""
    fields: dict[str, float | int | None] = {}
    for group in GROUPS:
        found = activity.get(group)
        fields[f"{group}_moved"] = None if found is None else found.moved
        fields[f"{group}_rel"] = None if found is None else found.rel
        fields[f"{group}_transfers"] = None if found is None else found.transfers
    return fields


ACTIVITY_FIELDS = tuple(f"{g}_{m}" for g in GROUPS for m in ("moved", "rel", "transfers"))
