import pytest

from apps.core.redis import get_redis


@pytest.fixture(autouse=True)
def _forget_provider_health():
    """Provider health and the answer cache live in Redis, keyed by ids that tests reuse."""

    def clear():
        redis = get_redis()
        for pattern in ("assistant:provider:*", "assistant:answer-cache:*"):
            keys = list(redis.scan_iter(pattern))
            if keys:
                redis.delete(*keys)

    clear()
    yield
    clear()


@pytest.fixture(autouse=True)
def _fast_backoff(settings):
    settings.MODEL_RETRY_BASE_SECONDS = 0.05
    settings.MODEL_RETRY_MAX_SECONDS = 0.2
