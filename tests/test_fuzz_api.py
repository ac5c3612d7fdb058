"""The library's promise under hostile input, held over the whole public API.

For every public function of every concept module, hypothesis picks parameters and bad values
for them (NaN, a string, ``None``, a negative count or duration, a count of 10**12, a
non-integral count), one parameter at a time, the others given plausible values. Each call runs
in a forked child with a memory cap and a time limit, so a hang or a runaway allocation is
observed instead of suffered. The promise:

- a clearly invalid value gets a ``ValueError``/``TypeError`` whose message names the caller's
  parameter;
- a huge count is refused the same way, or the call finishes in time without a MemoryError;
- nothing is left behind: no temporary file or folder (each call gets a private temp folder),
  no child process;
- ``theory_*`` closed forms given valid-looking numbers return finite numbers or a documented
  refusal, never an OverflowError or a hang.

A function whose other parameters cannot be given plausible values by name (a DataFrame, a
config object) is counted as not covered; the coverage floor below keeps that honest.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import os
import pickle
import pkgutil
import resource
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import syslab

SRC = Path(syslab.__file__).parent
# Modules whose public functions are not data-in/data-out API: servers and notebook display.
EXCLUDED_MODULES = {"engines", "environment", "processes", "notebook", "claims", "datasets", "plot"}
TIME_LIMIT_S = 6.0
MEMORY_CAP_BYTES = 3 * 2**30
MIN_COVERED_FUNCTIONS = 140  # the suite must keep fuzzing at least this many functions


# ----------------------------------------------------------------------------- the API


def concept_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(SRC)])
        if not info.name.startswith("_")
        and info.name != "children"
        and info.name not in EXCLUDED_MODULES
        and not info.name.endswith(("_child", "_server", "_peer", "_worker", "_probe"))
    )


def public_functions() -> list[tuple[str, str]]:
    found = []
    for module_name in concept_modules():
        module = importlib.import_module(f"syslab.{module_name}")
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                found.append((module_name, name))
    return found


COUNT_WORDS = ("count", "size", "capacity", "iterations", "replications", "repeats", "servers")


# Quantities that may legitimately be negative (a time remaining after expiry, an offset, a lag).
SIGNED_WORDS = ("remaining", "offset", "delta", "skew", "start", "lead", "lag", "shift", "drift")


def is_count(name: str) -> bool:
    return name.startswith("n_") or name == "n" or name.endswith(COUNT_WORDS) or name in {"k", "c"}


def is_duration_or_rate(name: str) -> bool:
    return name.endswith(("_s", "_ms", "_us", "_ns", "_per_s", "_bytes"))


def plausible_value(parameter: inspect.Parameter):
    """A value a caller would plausibly pass, chosen from the parameter's name and annotation."""
    name, annotation = parameter.name, str(parameter.annotation)
    if name == "seed":
        return 0
    if name == "rng":
        return np.random.default_rng(0)
    if is_count(name):
        return 4
    if name.endswith("_per_s"):
        return 50.0
    if name.endswith("_ms"):
        return 5.0
    if name.endswith("_us"):
        return 50.0
    if name.endswith("_ns"):
        return 100.0
    if name.endswith("_s"):
        return 0.5
    if name.endswith("_bytes"):
        return 4096
    if name.endswith(("fraction", "share", "probability", "utilisation", "utilization", "rho", "load")):
        return 0.3
    if annotation in ("int",):
        return 4
    if annotation in ("float", "float | int", "int | float"):
        return 0.5
    if annotation == "bool":
        return False
    return inspect.Parameter.empty


def numeric_parameters(func) -> list[inspect.Parameter]:
    out = []
    for parameter in inspect.signature(func).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = str(parameter.annotation)
        numeric_annotation = annotation in (
            "int",
            "float",
            "float | int",
            "int | float",
        ) or annotation.startswith(("int |", "float |"))
        default = parameter.default
        numeric_default = isinstance(default, numbers.Real) and not isinstance(default, bool)
        if (
            numeric_annotation
            or numeric_default
            or (is_count(parameter.name) or is_duration_or_rate(parameter.name))
        ):
            if any(
                word in annotation
                for word in ("Sequence", "ndarray", "DataFrame", "list", "tuple", "Iterable")
            ):
                continue  # a collection, not a number
            out.append(parameter)
    return out


def base_call(func) -> dict | None:
    """Keyword arguments for every required parameter, or None if one cannot be guessed."""
    kwargs = {}
    for parameter in inspect.signature(func).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            continue
        value = plausible_value(parameter)
        if value is inspect.Parameter.empty:
            return None
        kwargs[parameter.name] = value
    return kwargs


def bad_values(parameter: inspect.Parameter) -> list[tuple[str, object]]:
    """(label, value) pairs that are clearly invalid for this parameter."""
    annotation = str(parameter.annotation)
    # None is a valid seed by the library's convention (fresh entropy).
    optional = "None" in annotation or parameter.default is None or parameter.name == "seed"
    values: list[tuple[str, object]] = [("nan", float("nan")), ("list", [1])]
    if "str" not in annotation:
        values.append(("string", "3"))
    if not optional:
        values.append(("none", None))
    if is_count(parameter.name):
        values += [("negative", -1), ("huge", 10**12), ("fractional", 2.5), ("inf", float("inf"))]
    elif is_duration_or_rate(parameter.name) and not any(word in parameter.name for word in SIGNED_WORDS):
        values.append(("negative", -1.0))
    return values


# ----------------------------------------------------------------------------- isolated calls


def _child_pids() -> list[int]:
    pids = []
    for children in Path("/proc/self/task").glob("*/children"):
        pids += [int(p) for p in children.read_text().split()]
    return pids


def call_isolated(module_name: str, function_name: str, kwargs: dict, time_limit_s: float = TIME_LIMIT_S):
    """Run one call in a forked child; return ``(outcome, detail)``.

    outcome is ``"returned"``, ``"raised"`` (detail: (type name, message)), ``"timeout"``,
    ``"crashed"``, or ``"leftover"`` (detail: what was left behind).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        try:
            os.close(read_fd)
            os.setsid()
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))
            # A private temp folder per call: anything left in it was left by this call alone.
            private_tmp = tempfile.mkdtemp(prefix="fuzz-call-")
            os.environ["TMPDIR"] = private_tmp
            tempfile.tempdir = private_tmp
            func = getattr(importlib.import_module(f"syslab.{module_name}"), function_name)
            try:
                result = func(**kwargs)
                report = ("returned", _describe_result(result))
            except BaseException as error:  # noqa: BLE001 - we classify every outcome
                report = ("raised", (type(error).__name__, str(error)[:400]))
            left = sorted(p.name for p in Path(private_tmp).iterdir())
            children = _child_pids()
            if not left:
                os.rmdir(private_tmp)
            if left or children:
                report = ("leftover", f"temp entries {left}, child processes {children}")
            with os.fdopen(write_fd, "wb") as pipe:
                pickle.dump(report, pipe)
        finally:
            os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + time_limit_s
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.005)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(read_fd)
        return "timeout", f"still running after {time_limit_s:g} s"
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    if not data:
        return "crashed", "the child died without a report"
    return pickle.loads(data)


def _describe_result(result) -> str:
    if isinstance(result, numbers.Real) and not isinstance(result, bool):
        return "nonfinite" if not math.isfinite(float(result)) else "finite"
    return type(result).__name__


# ----------------------------------------------------------------------------- the tests

FUNCTIONS = public_functions()
CANDIDATES = [
    (m, f) for m, f in FUNCTIONS if numeric_parameters(getattr(importlib.import_module(f"syslab.{m}"), f))
]


def test_the_fuzz_covers_most_of_the_api():
    covered = [
        (m, f)
        for m, f in CANDIDATES
        if base_call(getattr(importlib.import_module(f"syslab.{m}"), f)) is not None
    ]
    assert len(covered) >= MIN_COVERED_FUNCTIONS, f"only {len(covered)} functions can be fuzzed"


@pytest.mark.parametrize(("module_name", "function_name"), CANDIDATES, ids=lambda x: str(x))
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_invalid_input_is_refused_by_name(module_name, function_name, data):
    func = getattr(importlib.import_module(f"syslab.{module_name}"), function_name)
    kwargs = base_call(func)
    if kwargs is None:
        return  # counted by the coverage test
    parameter = data.draw(st.sampled_from(numeric_parameters(func)), label="parameter")
    label, value = data.draw(st.sampled_from(bad_values(parameter)), label="bad value")
    outcome, detail = call_isolated(module_name, function_name, {**kwargs, parameter.name: value})
    where = f"{module_name}.{function_name}({parameter.name}={value!r})"
    assert outcome not in ("timeout", "crashed", "leftover"), f"{where}: {outcome}: {detail}"
    if outcome == "raised":
        kind, message = detail
        if kind in ("ValueError", "TypeError") and parameter.name not in message:
            # The error names another parameter: our plausible value for it was not valid, so this
            # call says nothing about the mutated one. It must still be a clear error.
            others = [name for name in kwargs if name in message]
            assert others, f"{where}: {kind} does not name the parameter: {message!r}"
            return
        assert kind in ("ValueError", "TypeError"), f"{where}: raised {kind}: {message}"
        return
    assert label == "huge", f"{where}: accepted a clearly invalid value ({label}) and returned {detail}"


THEORY = [(m, f) for m, f in CANDIDATES if f.startswith("theory_")]


@pytest.mark.parametrize(("module_name", "function_name"), THEORY, ids=lambda x: str(x))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_closed_forms_are_finite_or_refuse_clearly(module_name, function_name, data):
    func = getattr(importlib.import_module(f"syslab.{module_name}"), function_name)
    kwargs = base_call(func)
    if kwargs is None:
        return
    for parameter in numeric_parameters(func):
        if is_count(parameter.name) or str(parameter.annotation) == "int":
            kwargs[parameter.name] = data.draw(st.integers(1, 10**6), label=parameter.name)
        elif parameter.name.endswith(("fraction", "share", "probability", "utilisation", "rho")):
            kwargs[parameter.name] = data.draw(st.floats(0.0, 1.0), label=parameter.name)
        elif parameter.name != "seed":
            kwargs[parameter.name] = data.draw(st.floats(1e-6, 1e6), label=parameter.name)
    outcome, detail = call_isolated(module_name, function_name, kwargs, time_limit_s=5.0)
    where = f"{module_name}.{function_name}({kwargs})"
    assert outcome not in ("timeout", "crashed", "leftover"), f"{where}: {outcome}: {detail}"
    if outcome == "raised":
        kind, message = detail
        assert kind in ("ValueError", "TypeError"), f"{where}: raised {kind}: {message}"
        assert any(name in message for name in kwargs), f"{where}: {kind} names no parameter: {message!r}"
    else:
        assert detail != "nonfinite" or "inf" in (func.__doc__ or ""), (
            f"{where}: returned a non-finite number"
        )
