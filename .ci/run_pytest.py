"""Run pytest; exit code 5 (no tests collected) is reported loudly and counts as a failure.

A tox env that collects no test is a broken env (a wrong path, a missing install), not a pass.
"""

import sys

import pytest

code = pytest.main(sys.argv[1:])
if code == pytest.ExitCode.NO_TESTS_COLLECTED:
    print(f"error: pytest collected no tests from {sys.argv[1:]}", file=sys.stderr)
sys.exit(int(code))
