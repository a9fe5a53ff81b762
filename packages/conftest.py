"""Shared by every package's unit tests: how many examples Hypothesis tries.

The unit suite runs on five Pythons, and its property tests (the frame reader's above all)
are what takes its time. One Python of the matrix (3.11, the one the fault and tooling suites
use too) runs them in full; the others run a quarter of the examples, with fresh random
inputs each run. ``ISC_TEST_FULL_EXAMPLES=1`` runs them in full everywhere. Tests that need
more than Hypothesis's default ask for a multiple of the profile's count
(``max_examples=4 * settings.default.max_examples``), so they scale with it.
"""

from __future__ import annotations

import os
import sys

from hypothesis import settings

#: The Python that runs the property tests with every example.
FULL_EXAMPLES_ON = (3, 11)
ENV_FULL_EXAMPLES = "ISC_TEST_FULL_EXAMPLES"

settings.register_profile("matrix", max_examples=25)
if sys.version_info[:2] != FULL_EXAMPLES_ON and not os.environ.get(ENV_FULL_EXAMPLES):
    settings.load_profile("matrix")
