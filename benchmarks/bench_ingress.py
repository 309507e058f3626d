"""The hot-path cost of ingress transforms (issue 19 §3): µs per message through `DeviceMapper.uplink`.

    python -m benchmarks.bench_ingress [--seconds 1.0] [--output benchmarks/results/ingress.json]

Cases, each a one-record notification of /3303/0/5700 mapped to one telemetry message:
- `plain`: a codec with the temperature alone (no transforms);
- `one computed`: the same with `temperatureF = temperature * 9 / 5 + 32`;
- `climate example`: docs/examples/climate.toml (three computed fields, one of them the dew point with
  two logarithms, drop, rename and enrichment), the message carrying temperature and humidity.
The difference between the first two is what one computed field costs per message. Then the expression
libraries compared for the choice (docs/codec.md, "Computed telemetry"): µs per evaluation of the dew point,
parsed once, for each of simpleeval, asteval, cel-python and py_expression_eval that is installed
(`pip install asteval cel-python py_expression_eval` into the venv to measure them all; only simpleeval is a
dependency). Best of 10 rounds; the machine is shared, so take the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

from translator.codec import DeviceMapper, load_codec, parse_codec
from translator.codec.expressions import FUNCTIONS, compile_expression
from translator.lwm2m import ObjectRegistry, Path, Record

ROOT = FsPath(__file__).resolve().parent.parent
RESULTS = FsPath(__file__).resolve().parent / "results" / "ingress.json"
PLAIN = """
[template]
id = "dtmi:bench:plain;1"
[[telemetry]]
path = "/3303/0/5700"
name = "temperature"
unit = "degreeCelsius"
"""
COMPUTED = PLAIN.replace("plain", "computed") + (
    '[[computed]]\nname = "temperatureF"\nexpression = "temperature * 9 / 5 + 32"\n'
    'unit = "degreeFahrenheit"\n'
)
DEW_POINT = (
    "243.04 * (log(h / 100) + 17.625 * t / (243.04 + t))"
    " / (17.625 - log(h / 100) - 17.625 * t / (243.04 + t))"
)


def per_call_us(work: Callable[[], object], seconds: float) -> float:
    """Best of 10 rounds of about seconds/10 each: µs per call."""
    return interleaved({"work": work}, seconds)["work"]


def interleaved(works: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """µs per call of each, best of 10 rounds, the cases' rounds interleaved so that a busy spell of the
    shared machine hits them alike (their difference is the figure that matters)."""
    calls = {}
    for name, work in works.items():
        n = 1
        while True:  # calibrate: a batch of about 10 ms
            start = time.perf_counter()
            for _ in range(n):
                work()
            if time.perf_counter() - start > 0.01:
                break
            n *= 2
        calls[name] = n
    best = dict.fromkeys(works, math.inf)
    for _ in range(10):
        for name, work in works.items():
            done = 0
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / 10 / len(works):
                for _ in range(calls[name]):
                    work()
                done += calls[name]
            best[name] = min(best[name], (time.perf_counter() - start) / done)
    return {name: round(value * 1e6, 2) for name, value in best.items()}


def mapper_cases(registry: ObjectRegistry, seconds: float) -> dict[str, float]:
    temperature = [Record(Path(3303, 0, 5700), 21.5)]
    both = [*temperature, Record(Path(3304, 0, 5700), 55.0)]
    plain = DeviceMapper(parse_codec(PLAIN, registry), device_id="bench")
    computed = DeviceMapper(parse_codec(COMPUTED, registry), device_id="bench")
    climate = DeviceMapper(
        load_codec(ROOT / "docs" / "examples" / "climate.toml", registry),
        device_id="bench",
        attributes={"site": "Lyon", "building": "B2", "customer": "Contoso"},
    )
    assert computed.uplink(temperature).telemetry[0].values["temperatureF"] == 70.7
    return interleaved(
        {
            "plain": lambda: plain.uplink(temperature),
            "one computed": lambda: computed.uplink(temperature),
            "climate example": lambda: climate.uplink(both),
        },
        3 * seconds,
    )


def library_cases(seconds: float) -> dict[str, Any]:
    names = {"t": 21.5, "h": 55.0}
    found: dict[str, Any] = {}
    ours = compile_expression(DEW_POINT, set(names))
    found["simpleeval (as used: checked, parsed once)"] = per_call_us(lambda: ours.evaluate(names), seconds)
    for name, build in (
        ("asteval", _asteval),
        ("cel-python", _cel),
        ("py_expression_eval", _py_expression_eval),
    ):
        try:
            work = build(names)
        except ImportError:
            found[name] = "not installed"
            continue
        found[name] = per_call_us(work, seconds)
    found["python function (the floor)"] = per_call_us(lambda: _dew_point(21.5, 55.0), seconds)
    return found


def _dew_point(t: float, h: float) -> float:
    g = math.log(h / 100) + 17.625 * t / (243.04 + t)
    return 243.04 * g / (17.625 - g)


def _asteval(names: dict[str, float]) -> Callable[[], object]:
    interpreter = importlib.import_module("asteval").Interpreter(minimal=True, use_numpy=False)
    interpreter.symtable.update(FUNCTIONS)
    node = interpreter.parse(DEW_POINT)

    def run() -> object:
        interpreter.symtable.update(names)
        return interpreter.run(node)

    return run


def _cel(names: dict[str, float]) -> Callable[[], object]:
    celpy = importlib.import_module("celpy")
    environment = celpy.Environment()
    text = DEW_POINT.replace("/ 100)", "/ 100.0)")
    program = environment.program(
        environment.compile(text), functions={"log": lambda x: celpy.celtypes.DoubleType(math.log(x))}
    )
    activation = {k: celpy.celtypes.DoubleType(v) for k, v in names.items()}
    return lambda: program.evaluate(activation)


def _py_expression_eval(names: dict[str, float]) -> Callable[[], object]:
    parsed = importlib.import_module("py_expression_eval").Parser().parse(DEW_POINT)
    return lambda: parsed.evaluate(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per case")
    parser.add_argument("--output", type=FsPath, default=RESULTS)
    args = parser.parse_args()
    registry = ObjectRegistry.builtin()
    mapper = mapper_cases(registry, args.seconds)
    result = {
        "benchmark": "ingress transforms: µs per message through DeviceMapper.uplink, one record",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "uplink_us_per_message": mapper,
        "one_computed_field_costs_us": round(mapper["one computed"] - mapper["plain"], 2),
        "dew_point_us_per_evaluation": library_cases(args.seconds),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
