"""How many Celery messages wait in the broker, per queue: the backlog of the
periodic jobs and of the work the connect queues. Read for /metrics.

Two brokers are understood: Redis (a queue is a list; its length is LLEN, summed
over kombu's priority sub-lists) and kombu's SQLAlchemy transport, the embedded
default (`sqla+sqlite:///…`): tables `kombu_queue` and `kombu_message`, where a
message still waiting has `visible` true (a delivered one is kept with `visible`
false until it is acknowledged). Any other broker, or one that cannot be read, gives
no figure: a scrape never fails because of the broker."""

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# Seconds to wait for the broker at a scrape.
BROKER_TIMEOUT = 1.0
# kombu.transport.redis: messages with a priority go to "<queue>\x06\x16<step>".
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)

_engines: dict[str, object] = {}


def celery_queue_names(conf) -> list[str]:
    """The queues the app sends to: the default one ("celery") and those named in
    `task_routes` and `task_queues`, in that order, without repeats."""
    names = [conf.task_default_queue or "celery"]
    routes = conf.task_routes or {}
    for route in routes if isinstance(routes, list | tuple) else [routes]:
        if isinstance(route, dict):
            for target in route.values():
                queue = target.get("queue") if isinstance(target, dict) else None
                if isinstance(queue, str):
                    names.append(queue)
                elif getattr(queue, "name", None):
                    names.append(queue.name)
    queues = conf.task_queues or []
    for queue in queues.keys() if isinstance(queues, dict) else queues:
        name = queue if isinstance(queue, str) else getattr(queue, "name", None)
        if name:
            names.append(name)
    return list(dict.fromkeys(names))


def broker_queue_lengths(
    *, broker_url: str, queues: list[str], transport_options: dict | None = None
) -> dict[str, int] | None:
    """Messages waiting in each of `queues`, or None when the broker is of another
    kind or cannot be read (logged at debug level)."""
    options = transport_options or {}
    scheme = broker_url.split("://", 1)[0].lower()
    try:
        if scheme in ("redis", "rediss", "redis+socket"):
            return _redis_lengths(broker_url, queues, options)
        if scheme.startswith(("sqla+", "sqlalchemy+")):
            return _sqlalchemy_lengths(broker_url.split("+", 1)[1], queues, options)
    except Exception:  # a broken broker must not break the scrape
        logger.debug("cannot read queue lengths from the broker", exc_info=True)
        return None
    return None


def celery_queue_lengths() -> dict[str, int] | None:
    """`broker_queue_lengths` for the broker and queues the Celery app uses (with
    region queues on, each region's too)."""
    from portal.celery import app
    from portal.celery_routing import region_queue_names

    conf = app.conf
    return broker_queue_lengths(
        broker_url=conf.broker_url or "",
        queues=list(dict.fromkeys(celery_queue_names(conf) + region_queue_names())),
        transport_options=dict(conf.broker_transport_options or {}),
    )


def _redis_lengths(url: str, queues: list[str], options: dict) -> dict[str, int]:
    import redis

    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://") :]
    client = redis.Redis.from_url(
        url, socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT
    )
    prefix = options.get("global_keyprefix", "")
    sep = options.get("sep", REDIS_PRIORITY_SEP)
    steps = options.get("priority_steps", REDIS_PRIORITY_STEPS)
    keys = {
        queue: [f"{prefix}{queue}"] + [f"{prefix}{queue}{sep}{step}" for step in steps if step]
        for queue in queues
    }
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for key in keys[queue]:
                    pipe.llen(key)
            counts = iter(pipe.execute())
    finally:
        client.close()
    return {queue: sum(next(counts) for _ in keys[queue]) for queue in queues}


def _sqlalchemy_lengths(url: str, queues: list[str], options: dict) -> dict[str, int] | None:
    from sqlalchemy import and_, column, func, select, table, true
    from sqlalchemy.engine import make_url

    database = make_url(url)
    if database.get_backend_name() == "sqlite":
        # Connecting would create a missing file: no file, no broker to read.
        if not database.database or not Path(database.database).is_file():
            logger.debug("the broker's SQLite file %s does not exist", database.database)
            return None
    queue_table = table(options.get("queue_tablename", "kombu_queue"), column("id"), column("name"))
    message_table = table(
        options.get("message_tablename", "kombu_message"),
        column("id"),
        column("queue_id"),
        column("visible"),
    )
    visible_of_queue = and_(
        message_table.c.queue_id == queue_table.c.id, message_table.c.visible == true()
    )
    waiting = (
        select(queue_table.c.name, func.count(message_table.c.id))
        .select_from(queue_table.outerjoin(message_table, visible_of_queue))
        .where(queue_table.c.name.in_(queues))
        .group_by(queue_table.c.name)
    )
    with _engine(url, sqlite=database.get_backend_name() == "sqlite").connect() as connection:
        found = dict(connection.execute(waiting).all())
    return {queue: int(found.get(queue, 0)) for queue in queues}


def _engine(url: str, *, sqlite: bool):
    """One engine per broker address, without a pool (a scrape every few seconds
    need not hold a connection, nor keep the SQLite file open)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if url not in _engines:
        connect_args = {"timeout": BROKER_TIMEOUT} if sqlite else {}
        if not sqlite:
            connect_args = {"connect_timeout": max(1, int(BROKER_TIMEOUT))}
        _engines[url] = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    return _engines[url]
