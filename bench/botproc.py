"""``python -m bench.botproc``: exactly ``python -m nothotdog.bot``, minus the 30 messages/s
send cap.

python-telegram-bot's ``AIORateLimiter`` (which the bot uses, as ``bot.ratelimit``'s
``InOrderRateLimiter``, to stay inside Telegram's flood limits) holds every ``sendMessage`` to
30 per second overall. The int8 model on two cores can answer about that many photos per
second, so with the cap on, the load benchmark would measure the limiter instead of the bot.
This wrapper builds a plain AIORateLimiter with ``overall_max_rate=0`` and ``group_max_rate=0``
(python-telegram-bot's documented "no limit"), keeping its RetryAfter retries, then runs the
bot's own ``main``. Nothing in bot/ changes; ``bench.load`` also runs
the stock ``python -m nothotdog.bot`` once to show what the cap does.
"""

from __future__ import annotations

import functools
import sys

from telegram.ext import AIORateLimiter

import nothotdog.bot.app
from nothotdog.bot.__main__ import main

if __name__ == "__main__":
    if not hasattr(nothotdog.bot.app, "InOrderRateLimiter"):  # else the patch would do nothing
        sys.exit("bench.botproc: nothotdog.bot.app no longer uses InOrderRateLimiter; update me")
    nothotdog.bot.app.InOrderRateLimiter = functools.partial(  # type: ignore[misc]
        AIORateLimiter, overall_max_rate=0, group_max_rate=0
    )
    sys.exit(main())
