"""The Telegram bot: settings -> classifier -> pipeline (line, download) -> handlers -> app
(docs/how-it-works.md)."""
