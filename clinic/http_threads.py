"""Django's pages under ASGI on a fixed set of threads, each keeping its database connection.

Django's own ASGI handler runs each request's synchronous code (middleware, views) on a
thread made for that request alone. Requests do run side by side, but each opens a new
database connection: on PostgreSQL that costs the server about 10 ms of CPU, more than half
of what a check-in costs. Keeping connections (CONN_MAX_AGE) does not help there: each one
belongs to a thread that ends with its request, so it is never used again nor closed in
time, and they pile up until PostgreSQL refuses new ones.

Here the synchronous code of every request runs on one pool of settings.HTTP_THREADS
long-lived threads, each keeping its connection between requests (CONN_MAX_AGE): a process
holds at most that many connections for pages, and runs at most that many pieces of
synchronous code at once; the next wait, first come first served. Only the synchronous code
holds a thread: a request body still arriving or a response still being sent to a slow
phone holds none, so slow clients cannot keep others waiting.

The middleware and the view run as one synchronous chain, in one step on the pool. (Django's
own ASGI handler builds its chain for async: each synchronous middleware's hooks, each
process_view and the view itself then go to a thread and come back to the event loop one by
one, about ten hand-offs per request, each waiting its turn behind whatever else the loop is
doing, such as sending live updates to open screens.) So a request takes three steps: the
request_started signal, the middleware and view, closing the response.

A request's steps may so run on different threads of the pool; nested calls still come back to
their caller's thread (asgiref). Django keeps nothing per thread from one step to the next
but the database connection, and each step first does what Django's request signals do for
the connection of its thread (close it when too old, broken or left in a transaction, and
check it before its next use), so no step meets a connection only another thread looked at.
"""

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections


def _kept(fn, /, *args, **kwargs):
    close_old_connections()
    return fn(*args, **kwargs)


class Threads(ThreadPoolExecutor):
    """The pool: every piece of work first looks after its thread's connection."""

    def __init__(self, threads: int):
        super().__init__(max_workers=threads, thread_name_prefix="http")

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_kept, fn, *args, **kwargs)


class ThreadsASGIHandler(ASGIHandler):
    def __init__(self, threads: int):
        super().__init__()
        self.load_middleware(is_async=False)
        self.threads = Threads(threads)

    async def get_response_async(self, request):
        # Django's synchronous get_response (its URL conf, the chain, logging an error
        # answer) on the pool, as one step.
        return await sync_to_async(self.get_response)(request)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        async with ThreadSensitiveContext(executor=self.threads):
            await self.handle(scope, receive, send)
