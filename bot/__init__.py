"""The Telegram bot: settings -> classifier -> handlers -> application (see DESIGN.md)."""
