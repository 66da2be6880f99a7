"""The search space of a tuning run: Optuna distributions derived from the variables.

Each tunable variable's type and constraints say what may be tried:
``float`` with ``min``/``max`` → ``FloatDistribution`` (``log=True`` when the
variable's metadata has ``"log": true`` or ``"scale": "log"``, ``step`` from
metadata ``"step"``), ``int`` → ``IntDistribution``, ``choice``/``bool`` →
``CategoricalDistribution``. A user narrows it with ``space=``: a ``(low,
high)`` tuple, a list of values, or any Optuna distribution. Everything is
checked before a trial runs: a name that is not a variable of the program is
``VariableNotFound``, a range or a value the constraints refuse is ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError, VariableNotFound
from ..running.overrides import program_variables
from ..variables.types import compile_validator

__all__ = ["build_space", "grid_values"]


def _metadata(spec: Any, ctx: Any, name: str) -> Mapping[str, Any]:
    for decl in spec.variables:
        if decl.name == name:
            return dict(decl.metadata)
    try:
        return dict(ctx.variable(name).metadata)
    except KeyError:
        return {}


def _default(name: str, type_name: str, c: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if type_name in ("float", "int"):
        if c.get("min") is None or c.get("max") is None:
            raise ValidationError(
                f"{name} ({type_name}) has no min/max constraints: give its range in space="
            )
        log = bool(meta.get("log")) or meta.get("scale") == "log"
        step = meta.get("step")
        if type_name == "int":
            return IntDistribution(int(c["min"]), int(c["max"]), log=log, step=int(step or 1))
        return FloatDistribution(float(c["min"]), float(c["max"]), log=log, step=step)
    if type_name == "choice":
        return CategoricalDistribution(list(c["choices"]))
    if type_name == "bool":
        return CategoricalDistribution([False, True])
    raise ValidationError(
        f"{name} is a {type_name} variable: give the values to try in space= (a list)"
    )


def _check(name: str, validate: Any, value: Any) -> None:
    try:
        validate(value)
    except ValidationError as exc:
        raise ValidationError(f"space {name}: {exc}") from None


def _given(name: str, type_name: str, c: Mapping[str, Any], value: Any) -> Any:
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    validate = compile_validator(type_name, c)
    if isinstance(value, BaseDistribution):
        dist = value
    elif isinstance(value, tuple):
        if len(value) not in (2, 3) or type_name not in ("float", "int"):
            raise ValidationError(
                f"space {name}: a (low, high[, step]) range is for float/int variables"
            )
        low, high, *step = value
        if type_name == "int":
            dist = IntDistribution(int(low), int(high), step=int(step[0]) if step else 1)
        else:
            dist = FloatDistribution(float(low), float(high), step=step[0] if step else None)
    elif isinstance(value, list) and value:
        dist = CategoricalDistribution(value)
    else:
        raise ValidationError(
            f"space {name}: give a (low, high) range, a non-empty list or an Optuna "
            f"distribution, got {value!r}"
        )
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        if dist.low > dist.high:
            raise ValidationError(f"space {name}: low {dist.low} > high {dist.high}")
        _check(name, validate, dist.low)
        _check(name, validate, dist.high)
    elif isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            _check(name, validate, choice)
    return dist


def build_space(spec: Any, ctx: Any, space: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{variable: optuna distribution}``; the default is every variable the program binds."""
    known = program_variables(spec, ctx)
    if space is None:
        bound = {v for m in spec.modules for v in m.bindings.values()}
        names = [n for n in known if n in bound]
        if not names:
            raise ValidationError("the program binds no variable: there is nothing to tune")
        return {n: _default(n, *known[n], _metadata(spec, ctx, n)) for n in names}
    if not isinstance(space, Mapping) or not space:
        raise ValidationError(f"space must be a non-empty mapping of variables, got {space!r}")
    result = {}
    for name, value in space.items():
        if name not in known:
            raise VariableNotFound(name, known)
        type_name, constraints = known[name]
        result[name] = _given(name, type_name, constraints, value)
    return result


def grid_values(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid of ``GridSampler``: categorical choices, int ranges, floats with a step."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution):
            grid[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step:
            count = int(round((dist.high - dist.low) / dist.step))
            grid[name] = [round(dist.low + i * dist.step, 12) for i in range(count + 1)]
        else:
            raise ValidationError(
                f"the grid sampler needs explicit values or a step for {name}: "
                "space={name: [values]} or (low, high, step)"
            )
    return grid
