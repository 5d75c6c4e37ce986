"""How many examples a property test tries, scaled by the Hypothesis profile in force.

The profiles themselves are registered in `tests/conftest.py`: "ci" (the thorough run,
`make test` in CI) and "dev" (the default elsewhere, a tenth of the examples).

Why a helper: an explicit `@settings(max_examples=150)` pins the count, so no profile
could shorten it. A test that needs its own count (more for a cheap property, fewer for
one that builds whole accounts) writes `max_examples=examples(150)` instead: 150 under
"ci" and the same share of any other profile's budget.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis.errors import InvalidArgument

# Never fewer than this: a handful of examples still catches a property broken outright.
FLOOR = 5


def examples(thorough: int) -> int:
    """`thorough` examples under the "ci" profile, scaled by max_examples under any other."""
    try:
        full = settings.get_profile("ci").max_examples
    except InvalidArgument:  # the profiles are not registered: a module imported on its own
        return thorough
    current = settings.default
    assert current is not None  # hypothesis always has a loaded profile
    return max(FLOOR, round(thorough * current.max_examples / full))
