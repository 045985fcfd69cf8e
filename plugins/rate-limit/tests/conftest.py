import pytest
from triogate_rate_limit import RateLimitPlugin


@pytest.fixture
def plugins():
    return {"rate-limit": RateLimitPlugin}
