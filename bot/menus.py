"""The command menu and the bot's profile texts, in every language the bot speaks, set at
start-up: Telegram shows each user the ones for their app's language, English otherwise."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, BotCommand
from telegram.error import TelegramError

from nothotdog.bot import i18n, model_texts, replies, teach_replies
from nothotdog.bot.retry import with_retries
from nothotdog.contract import ModelSpec

log = logging.getLogger(__name__)


async def publish(bot: Bot, spec: ModelSpec) -> None:
    """setMyCommands, setMyDescription and setMyShortDescription for each language; English
    is also the default, for every language without its own. Each is a nicety: a failure is
    logged and never a reason not to start."""
    calls: list[tuple[str, Callable[[], Awaitable[bool]]]] = []
    for language in i18n.LANGUAGES:
        code = None if language == i18n.ENGLISH else language  # None: the default
        with i18n.speaking(language):
            commands = [BotCommand(name, i18n._(text))
                        for name, text in (*replies.COMMANDS, *teach_replies.COMMANDS)]  # fmt: skip
            description = model_texts.description(spec)
            short = model_texts.short_description(spec)
        calls += [
            ("setMyCommands", _bind(bot.set_my_commands, commands, language_code=code)),
            ("setMyDescription", _bind(bot.set_my_description, description, language_code=code)),
            ("setMyShortDescription", _bind(bot.set_my_short_description, short,
                                            language_code=code)),
        ]  # fmt: skip
    results = await asyncio.gather(*(with_retries(call, what) for what, call in calls),
                                   return_exceptions=True)  # fmt: skip
    for (what, _call), result in zip(calls, results, strict=True):
        if isinstance(result, TelegramError):
            log.warning("could not %s: %s", what, result)
        elif isinstance(result, BaseException):
            raise result


def _bind(method: Callable[..., Awaitable[bool]], *args: object, **kwargs: object
          ) -> Callable[[], Awaitable[bool]]:  # fmt: skip
    return lambda: method(*args, **kwargs)
