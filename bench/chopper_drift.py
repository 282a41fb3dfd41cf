"""How far a skewed device's offset moves a trained layer's weights under each algorithm, by number of updates.

One 16x16 analog tile (``AnalogLinear``, no bias) on the rpu config a sweep point gets (``workers._devices
.build_rpu_config``: the ReRAM preset at the default device's pulse noise 3.75 and device-to-device 0.3, the
quickstart's ``auto_granularity`` 480 and weight mapping), programmed with a target ``W*`` (0.3 N(0, 1)) and trained
towards it by mean-squared error on random inputs (batch 8, ``--lr``). A perfect optimiser would stay at ``W*``; what
it prints is the mean and rms of ``W - W*`` after each number of updates (``--steps``), mean (sd) over ``--seeds``.

The symmetry-point skew (``--skew``, percent of the weight range, the sweep axis ``sp_skew``) is set on the fast
(gradient-accumulating) device only, on the slow (weight-holding) one only, or on both as a sweep sets it. The chopper
of c-TTv2 (and AGAD) flips the sign of what the fast device accumulates, so a fast-device offset averages out; TTv2
has none, so the offset is transferred into the weights as a drift. No chopper cancels a slow-device offset.

A network layer of the embedded miniature gets about 120 updates (48 images / batch 8 x 20 epochs): compare the
drifts at that horizon with the longer ones.

    .venv/bin/python bench/chopper_drift.py --steps 120 600 3000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from aihwkit.nn import AnalogLinear  # noqa: E402
from aihwkit.optim import AnalogSGD  # noqa: E402

from analog_sweep.workers import DEFAULT_DEVICE, AlgorithmConfig, MappingConfig, build_rpu_config  # noqa: E402
from analog_sweep.workers._devices import learning_device  # noqa: E402

SIZE = 16
PLACES = ("fast", "slow", "both")


def drift(algorithm: str, skew: float, place: str, steps: int, *, lr: float, seed: int) -> tuple[float, float]:
    """Mean and rms of ``W - W*`` after ``steps`` updates towards ``W*`` with the skew on ``place``."""
    torch.manual_seed(seed)
    settings = (("auto_granularity", 480),) + ((("in_chop_prob", 0.0),) if algorithm == "ttv2" else ())
    config = AlgorithmConfig(name=algorithm, settings=settings, mapping=MappingConfig(weight_scaling_omega=0.6))
    device = dataclasses.replace(DEFAULT_DEVICE, sp_skew=skew)
    rpu = build_rpu_config(config, device)
    unskewed = learning_device(dataclasses.replace(device, sp_skew=0.0))
    if place == "fast":
        rpu.device.unit_cell_devices[1] = unskewed
    elif place == "slow":
        rpu.device.unit_cell_devices[0] = unskewed
    target = 0.3 * torch.randn(SIZE, SIZE, generator=torch.Generator().manual_seed(1000 + seed))
    layer = AnalogLinear(SIZE, SIZE, bias=False, rpu_config=rpu)
    layer.set_weights(target.clone())
    optimiser = AnalogSGD(layer.parameters(), lr=lr)
    optimiser.regroup_param_groups(layer)
    for _ in range(steps):
        x = torch.randn(8, SIZE)
        loss = ((layer(x) - x @ target.T) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    error = layer.get_weights()[0] - target
    return error.mean().item(), error.pow(2).mean().sqrt().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=["c-ttv2", "ttv2", "agad"])
    parser.add_argument("--skew", type=float, default=20.0, help="sp_skew in percent of the weight range")
    parser.add_argument("--places", nargs="+", choices=PLACES, default=list(PLACES))
    parser.add_argument("--steps", nargs="+", type=int, default=[120, 600, 3000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("$ .venv/bin/python bench/chopper_drift.py " + shlex.join(sys.argv[1:]))
    print(f"16x16 tile from W* towards W*, skew {args.skew:g} % on the device(s) named, lr {args.lr:g}, batch 8;")
    print(f"mean(W - W*) and rms(W - W*), mean (sd) over seeds {args.seeds}")
    print(f"{'algorithm':9s} {'skew on':7s} {'updates':>7s}  {'mean drift':>16s}  {'rms':>14s}")
    for algorithm in args.algorithms:
        for place in args.places:
            for steps in args.steps:
                found = [drift(algorithm, args.skew, place, steps, lr=args.lr, seed=s) for s in args.seeds]
                means, rms = [m for m, _ in found], [r for _, r in found]
                sd = statistics.stdev(means) if len(means) > 1 else 0.0
                rsd = statistics.stdev(rms) if len(rms) > 1 else 0.0
                print(
                    f"{algorithm:9s} {place:7s} {steps:7d}  {statistics.fmean(means):+8.3f} ({sd:5.3f})  "
                    f"{statistics.fmean(rms):6.3f} ({rsd:5.3f})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
