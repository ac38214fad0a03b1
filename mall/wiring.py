"""What the composition root (`workers/composition.py`) installed, and the check that it ran.

The capabilities plug into each other through registries (event reactions and subscribers, pricing
steps, outbox guards, hooks). Nothing fills them at import time: the root does, once per process, from
the settings. A process that skipped it would place orders that lock no coupon and write no outbox
message, silently; so recording an event or pricing a quote refuses to run until the root has run.
"""

from __future__ import annotations

from collections.abc import Callable


class NotWired(RuntimeError):
    """This process never ran the composition root."""


_done = False


def mark_installed() -> None:
    global _done
    _done = True


def require() -> None:
    if not _done:
        raise NotWired(
            "the composition root has not run in this process: call workers.composition.install(settings) "
            "(the API's create_app, the worker class, rq cron and `flask` commands do)"
        )


def name_of(handler: Callable) -> str:
    """`module.function` of a handler, through functools.partial and bound methods."""
    target = getattr(handler, "func", handler)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
