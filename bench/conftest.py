# The benchmarks reuse the test suite's fixtures: a real Celery worker, loopback fakes.
from tests.conftest import *  # noqa: F403
