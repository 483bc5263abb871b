"""Run pytest; exit code 5 (no tests collected) is reported loudly and counts as a failure.

A tox env that collects no test is a broken env (a wrong path, a missing install), not a pass.
The ten slowest tests of 10 s or more are listed, so that a CI log says where an env's time went
(an env once took 499 s instead of about 75 s, and the log could not say which test waited).
"""

import sys

import pytest

code = pytest.main(["--durations=10", "--durations-min=10", *sys.argv[1:]])
if code == pytest.ExitCode.NO_TESTS_COLLECTED:
    print(f"error: pytest collected no tests from {sys.argv[1:]}", file=sys.stderr)
sys.exit(int(code))
