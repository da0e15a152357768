"""``python -m bench.botproc``: exactly ``python -m nothotdog.bot``, minus the 30 messages/s
send cap.

python-telegram-bot's ``AIORateLimiter`` (which the bot uses to stay inside Telegram's flood
limits) holds every ``sendMessage`` to 30 per second overall. The int8 model on two cores can
answer about that many photos per second, so with the cap on, the load benchmark would measure
the limiter instead of the bot. This runs the bot's own ``main`` with a limiter built with
``overall_max_rate=0`` and ``group_max_rate=0`` (python-telegram-bot's documented "no
limit"), retrying as the bot's own does; ``bench.load`` also runs the stock
``python -m nothotdog.bot`` once to show what the cap does.
"""

from __future__ import annotations

import sys

from telegram.ext import AIORateLimiter

from nothotdog.bot.__main__ import main
from nothotdog.bot.app import RATE_LIMIT_RETRIES

if __name__ == "__main__":
    unlimited = AIORateLimiter(
        overall_max_rate=0, group_max_rate=0, max_retries=RATE_LIMIT_RETRIES
    )
    sys.exit(main(rate_limiter=unlimited))
