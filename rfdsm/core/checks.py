"""Checks shared by the sweep's config parser and the evaluators' TOML sections (one copy of
each message, naming the key and the allowed range)."""

from __future__ import annotations

import operator

__all__ = ["show", "check_int", "parse_dims", "count_values"]


def show(v) -> str:
    """``repr(v)``, shortened: a 400-digit integer in an error line helps nobody."""
    text = repr(v)
    return text if len(text) <= 40 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


def check_int(value, where: str, low: int, high: int | None = None) -> int:
    """``value`` as a Python ``int`` if it is an integer (Python or NumPy, not a bool) in
    ``[low, high]``, else a ValueError naming ``where``: the one integer check of rfdsm."""
    allowed = f">= {low}" if high is None else f"between {low} and {high}"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise ValueError(f"{where} must be an integer {allowed}, got bool {show(value)}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{where} must be an integer {allowed}, got {type(value).__name__} "
                         f"{show(value)}") from None
    if v < low or (high is not None and v > high):
        raise ValueError(f"{where} must be an integer {allowed}, got {show(v)}")
    return int(v)


def parse_dims(section: dict, where: str, what: str) -> list[int]:
    """The ``d`` of an evaluator's TOML section: one integer >= 1 or a list of distinct ones."""
    if "d" not in section:
        raise ValueError(f"{where}.d is required: {what}")
    ds = section["d"] if isinstance(section["d"], list) else [section["d"]]
    if not ds:
        raise ValueError(f"{where}.d is an empty list; give at least one dimension")
    ds = [check_int(v, f"{where}.d", 1) for v in ds]
    if len(set(ds)) != len(ds):
        raise ValueError(f"{where}.d lists a dimension more than once")
    return ds


def count_values(spec) -> int:
    """Number of values of one config entry (list, range table or scalar), read off without
    expanding it.  A malformed entry counts 1: the full parse then reports it properly."""
    if isinstance(spec, dict):
        num = spec.get("num")
        return num if isinstance(num, int) and not isinstance(num, bool) and num >= 1 else 1
    if isinstance(spec, list):
        return max(len(spec), 1)
    return 1
