"""``python -m bot`` is the ``kigen`` command."""

from bot.cli import main

main()
