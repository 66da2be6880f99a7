"""LocalState reads and validated writes against traitlets, the kernel's own reference.

Goal (issue 2): ``get`` <= 1.0x a ``HasTraits`` attribute read, and a validated
``set`` <= 1.0x a validated trait assignment (a ``Float`` with ``@validate``).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import traitlets

sys.path.insert(0, str(Path(__file__).parent))
from _timing import compare, ratio, report  # noqa: E402

from dspex_jupyter.state.local import LocalState  # noqa: E402


class Reference(traitlets.HasTraits):
    temperature = traitlets.Float(0.7)

    @traitlets.validate("temperature")
    def _check(self, proposal):
        value = proposal["value"]
        if not 0.0 <= value <= 2.0:
            raise traitlets.TraitError(f"{value} is outside [0, 2]")
        return value


def main() -> None:
    reference = Reference()
    state = LocalState()
    state.register("temperature", "float", 0.7, constraints={"min": 0.0, "max": 2.0})
    values = itertools.cycle([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])

    def trait_set() -> None:
        reference.temperature = next(values)

    gets = compare(
        {
            "traitlets: obj.temperature": lambda: reference.temperature,
            "LocalState: get(name).value": lambda: state.get("temperature").value,
        }
    )
    sets = compare(
        {
            "traitlets: validated obj.temperature = v": trait_set,
            "LocalState: set(name, v)": lambda: state.set("temperature", next(values)),
        }
    )
    report("read one variable (per op)", gets)
    ratio(gets, "LocalState: get(name).value", "traitlets: obj.temperature", 1.0)
    report("validated write of one variable (per op)", sets)
    ratio(sets, "LocalState: set(name, v)", "traitlets: validated obj.temperature = v", 1.0)


if __name__ == "__main__":
    main()
