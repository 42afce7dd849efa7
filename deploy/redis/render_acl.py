#!/usr/bin/env python3
"""Render Redis's ACL file for Vigil: one user per service, least privilege, ``default`` disabled.

Passwords come from the environment or from secret files, never from an image or this repository:
for each user ``U`` (ingest, classify, notify, capfeed, console, admin) the first of

* ``VIGIL_REDIS_PASSWORD_<U>`` (environment, e.g. from a ``.env`` file compose reads),
* the file named by ``VIGIL_REDIS_PASSWORD_<U>_FILE``,
* ``/run/secrets/vigil_redis_password_<u>`` (a Docker/Kubernetes secret)

is used. Only the SHA-256 of each password is written (``#<hex>``), so the rendered file holds no
password either. A user without a password is left out (its service cannot connect), unless
``--require-all``. Usage::

    python deploy/redis/render_acl.py --out /acl/users.acl [--require-all]
    redis-server --aclfile /acl/users.acl

Each service's ``REDIS_URL`` is then ``redis://<user>:<password>@redis:6379/0`` (or ``rediss://``
for TLS). The command and key lists below come from what the code sends (``vigil_shared.worker``,
``retention``, ``health``, each service's store) and what redis-py sends on connect (HELLO/AUTH,
CLIENT SETINFO, SELECT); tests/security/test_redis_acl.py runs each service's real code under its
user and proves what is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

RECEIVED = "vigil.alerts.received"
CLASSIFIED = "vigil.alerts.classified"
NOTIFICATIONS = "vigil.notifications"
DEADLETTER = "vigil.deadletter"

# keyless commands every client needs: connection set-up, transactions, loading scripts. (redis-py's
# CLIENT SETINFO on connect is left out: Redis 7.0 does not know it, and redis-py ignores its refusal.)
CONNECTION = (
    "+ping +echo +hello +auth +select +client|setname +client|getname +client|id "
    "+multi +exec +discard +watch +unwatch +script|load +script|exists +time"
)
# consuming a stream as a consumer group (StreamWorker): read, ack, claim, group upkeep
CONSUME = (
    "+xreadgroup +xack +xautoclaim +xclaim +xpending +xinfo +xgroup|create +xgroup|createconsumer "
    "+xgroup|delconsumer +xlen +exists +xrange"
)
# TYPE: the fenced commit checks its output keys are streams; XDEL: its transaction form (large outputs)
# deletes a fenced entry's outputs again before the transaction ends (vigil_shared.worker._COMMIT_MULTI_LUA)
PRODUCE = "+xadd +xlen +exists +type +xdel"
# every host runs the lag-aware retention trimmer over all Vigil streams (vigil_shared.retention)
RETENTION = "+exists +xlen +xrange +xrevrange +xinfo +xpending +xtrim"
# ... and its lease, one pass per interval among the processes (vigil_shared.retention.LEASE_KEY)
RETENTION_LEASE = ("vigil:retention:lease", "+set")
# a service's own non-stream keys: data commands only (no SCAN/KEYS: they would list others' key names)
OWN = "+@read +@write -@dangerous -@admin -@pubsub -scan -keys -randomkey -xadd"
SCRIPTS = "+evalsha +eval +evalsha_ro +eval_ro"


def _sel(patterns: list[str], commands: str) -> str:
    keys = " ".join(f"~{p}" for p in patterns)
    return f"({keys} {commands})"


def service_rules(consumes: list[str], produces: list[str], own: list[str]) -> str:
    selectors = []
    for stream in consumes:
        selectors.append(_sel([stream], CONSUME))
    selectors.append(_sel([*produces, DEADLETTER], PRODUCE))
    if own:
        selectors.append(_sel(own, OWN))
    selectors.append(_sel(["vigil.*"], RETENTION))
    selectors.append(_sel([RETENTION_LEASE[0]], RETENTION_LEASE[1]))
    # EVAL checks its declared keys as one command: one selector spans every key the user may touch
    # (all streams: the retention script declares each one); each redis.call inside the script is then
    # checked against the selectors above on its own, so a script cannot do more than the user can
    selectors.append(_sel(["vigil.*", *sorted(set(own))], SCRIPTS))
    return f"resetkeys resetchannels -@all {CONNECTION} " + " ".join(selectors)


# the operator console (services/console): reads every stream without a consumer group (XREVRANGE/XRANGE,
# XREAD for the live feed, XINFO/XPENDING/XLEN for pipeline health), GETs feed states (found with SCAN:
# key names only), keeps its API keys' rate buckets, and replays a dead letter (vigil_shared.deadletters:
# XADD the original entry back to the stream a consumer dead-lettered it from, XDEL the record, in one
# MULTI). No XTRIM (compose runs it with VIGIL_RETENTION_INTERVAL_S=0), no consumer groups, no other keys.
READ_STREAMS = "+xrevrange +xrange +xread +xinfo +xlen +xpending +exists"
REPLAYABLE = [RECEIVED, CLASSIFIED]  # the streams consumer groups read (and dead-letter from)


def console_rules() -> str:
    selectors = [
        _sel(["vigil.*"], READ_STREAMS),
        _sel(["vigil:feeds:*"], "+get +exists"),
        _sel(["vigil:ratelimit:*"], OWN),
        _sel(REPLAYABLE, "+xadd"),
        _sel([DEADLETTER], "+xdel"),
        # the rate-limit script (EVALSHA on one vigil:ratelimit:* key; its redis.calls are checked above)
        _sel(["vigil:ratelimit:*"], SCRIPTS),
    ]
    return f"resetkeys resetchannels -@all {CONNECTION} +scan " + " ".join(selectors)


USERS: dict[str, str] = {
    "ingest": service_rules(
        consumes=[],
        produces=[RECEIVED],
        own=["vigil:dedup:*", "vigil:feeds:*", "vigil:ratelimit:*"],
    ),
    "classify": service_rules(consumes=[RECEIVED], produces=[CLASSIFIED], own=[]),
    "notify": service_rules(
        consumes=[CLASSIFIED],
        produces=[NOTIFICATIONS],
        own=["vigil:subscriptions", "vigil:subscriptions:*", "vigil:notify:*", "vigil:ratelimit:*"],
    ),
    "capfeed": service_rules(consumes=[CLASSIFIED], produces=[], own=["vigil:capfeed:*"]),
    "console": console_rules(),
    # operators: vigil status / dlq / groups; everything Vigil's, nothing dangerous
    "admin": "resetkeys resetchannels -@all ~vigil* ~vigil.* +@all -@dangerous +info",
}


def password_for(user: str, env: dict[str, str], secrets_dir: Path) -> str | None:
    name = f"VIGIL_REDIS_PASSWORD_{user.upper()}"
    if env.get(name):
        return env[name]
    candidates = [Path(env[name + "_FILE"])] if env.get(name + "_FILE") else []
    candidates.append(secrets_dir / f"vigil_redis_password_{user}")
    for path in candidates:
        if path.is_file():
            value = path.read_text(encoding="utf-8").strip()
            if value:
                return value
    return None


def render(env: dict[str, str] | None = None, *, secrets_dir: Path = Path("/run/secrets"),
           require_all: bool = False, min_length: int = 16) -> str:  # fmt: skip
    env = dict(os.environ if env is None else env)
    # (an ACL file cannot hold comments: it is rendered, never edited or committed)
    lines = ["user default off resetkeys resetchannels -@all nopass"]
    missing = []
    for user, rules in USERS.items():
        password = password_for(user, env, secrets_dir)
        if password is None:
            missing.append(user)
            continue
        if len(password) < min_length:
            raise SystemExit(f"the Redis password of user {user} is shorter than {min_length} characters")
        digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
        lines.append(f"user {user} on #{digest} {rules}")
    if missing and require_all:
        raise SystemExit(
            "no Redis password for: " + ", ".join(missing) + " (set VIGIL_REDIS_PASSWORD_<USER>, "
            "VIGIL_REDIS_PASSWORD_<USER>_FILE or /run/secrets/vigil_redis_password_<user>)"
        )
    for user in missing:
        print(f"render_acl: no password for Redis user {user}: user left out", file=sys.stderr)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="ACL file to write (redis-server --aclfile)")
    parser.add_argument("--require-all", action="store_true", help="fail when a user has no password")
    parser.add_argument("--secrets-dir", default="/run/secrets")
    args = parser.parse_args()
    text = render(secrets_dir=Path(args.secrets_dir), require_all=args.require_all)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o640)
    tmp.replace(out)
    print(f"render_acl: wrote {out} ({text.count(chr(10)) - 2} users)", file=sys.stderr)


if __name__ == "__main__":
    main()
