"""Dependencies the services' speed relies on are really installed (a lock-file slip would otherwise
only show as a slower benchmark)."""

from redis.utils import HIREDIS_AVAILABLE


def test_redis_py_uses_the_hiredis_reply_parser() -> None:
    assert HIREDIS_AVAILABLE, "hiredis is missing: run `make install` (it is pinned in uv.lock via vigil-shared)"
