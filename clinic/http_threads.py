"""Django's pages under ASGI on a fixed set of threads, each keeping its database connection.

Django's own ASGI handler runs each request's synchronous code (middleware, views) on a
thread made for that request alone. Requests do run side by side, but each opens a new
database connection: on PostgreSQL that costs the server about 10 ms of CPU, more than half
of what a check-in costs. Keeping connections (CONN_MAX_AGE) does not help there: each one
belongs to a thread that ends with its request, so it is never used again nor closed in
time, and they pile up until PostgreSQL refuses new ones.

Here each request borrows one of settings.HTTP_THREADS long-lived threads for all of its
synchronous code and gives it back when the response is sent. Up to that many requests run
at once per process; the next ones wait, first come first served. Each thread keeps its
connection between requests (CONN_MAX_AGE; Django's request signals still close one that is
too old or broken), so a process never holds more than HTTP_THREADS connections for pages.
"""

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler


class ThreadsASGIHandler(ASGIHandler):
    def __init__(self, threads: int):
        super().__init__()
        self.threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-{number}")
            for number in range(threads)
        ]
        self._idle = deque(self.threads)
        self._waiting: deque[asyncio.Future] = deque()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        thread = await self._borrow()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self._give_back(thread)

    async def _borrow(self) -> ThreadPoolExecutor:
        if self._idle:  # nobody is waiting whenever a thread is idle
            return self._idle.popleft()
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            # The client went away while waiting; a thread handed over meanwhile goes on.
            if turn.done() and not turn.cancelled():
                self._give_back(turn.result())
            raise

    def _give_back(self, thread: ThreadPoolExecutor) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(thread)
                return
        self._idle.append(thread)
