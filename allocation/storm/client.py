"""The login storm's load generator: `concurrency` simulated thin clients at a time,
each posting one connect over its own HTTP/1.1 connection (kept alive when the
server allows it), until every body has been sent once.

It is asyncio over raw sockets rather than an HTTP library, so it costs the server
little of the machine's CPU, and it runs in a process of its own:

    python -m allocation.storm.client --port P --concurrency C BODIES.json ANSWERS.json

BODIES.json is a list of connect bodies; ANSWERS.json gets one answer per body
(status code, the body's `status` or `error`, the desktop id, latency) and the wall
time. It imports nothing from Django."""

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass

PATH = "/api/thin-client/v1/connect"


@dataclass
class Answer:
    """What one thin client got back, and after how long."""

    username: str
    status: int  # HTTP status; 0 when no answer came at all
    outcome: str  # the body's "status" ("ready", "preparing") or "error" code
    desktop: int | None
    latency_ms: float


class _Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        await self.open()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + payload)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:  # the body ends with the connection
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    async def _chunked(self) -> bytes:
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readuntil(b"\r\n")
        return b"".join(parts)


def _answer(username: str, status: int, body: bytes, latency_ms: float) -> Answer:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    outcome = str(data.get("status") or data.get("error") or "")
    desktop = data.get("desktop")
    desktop_id = desktop.get("id") if isinstance(desktop, dict) else None
    return Answer(username, status, outcome, desktop_id, round(latency_ms, 3))


async def storm(
    *, host: str, port: int, bodies: list[dict], concurrency: int, timeout: float = 60.0
) -> tuple[list[Answer], float]:
    """Send every body once, `concurrency` at a time; the answers in the order of
    `bodies`, and the wall time in seconds from the first send to the last answer."""
    queue: asyncio.Queue[tuple[int, dict]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    answers: list[Answer | None] = [None] * len(bodies)

    async def client() -> None:
        connection = _Connection(host, port)
        try:
            while not queue.empty():
                index, body = queue.get_nowait()
                payload = json.dumps(body).encode()
                username = str(body.get("username", ""))
                started = time.perf_counter()
                answer = None
                # A kept-alive connection the server closed in between fails
                # before any answer: open a new one once and send again.
                for attempt in (1, 2):
                    reused = connection.writer is not None
                    try:
                        status, _, raw = await asyncio.wait_for(
                            connection.post(PATH, payload), timeout
                        )
                    except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                        connection.close()
                        if attempt == 1 and reused and not isinstance(exc, asyncio.TimeoutError):
                            continue
                        elapsed = (time.perf_counter() - started) * 1000
                        answer = Answer(username, 0, type(exc).__name__, None, round(elapsed, 3))
                        break
                    elapsed = (time.perf_counter() - started) * 1000
                    answer = _answer(username, status, raw, elapsed)
                    break
                answers[index] = answer
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(max(1, min(concurrency, len(bodies))))))
    return [a for a in answers if a is not None], time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("bodies")
    parser.add_argument("answers")
    args = parser.parse_args(argv)
    with open(args.bodies) as source:
        bodies = json.load(source)
    answers, wall = asyncio.run(
        storm(host=args.host, port=args.port, bodies=bodies, concurrency=args.concurrency)
    )
    with open(args.answers, "w") as target:
        json.dump({"wall_seconds": wall, "answers": [asdict(a) for a in answers]}, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
