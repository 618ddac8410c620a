"""``python -m services.simulate ARGS`` = ``tailorline simulate ARGS`` (also before the command is
listed in services/cli.py's COMMAND_MODULES)."""

from __future__ import annotations

import sys


def _main() -> None:
    from services import cli
    from services.simulate import commands

    if "services.simulate.commands" not in cli.COMMAND_MODULES:
        commands.register(cli.app)
    cli.main(["simulate", *sys.argv[1:]])


if __name__ == "__main__":
    _main()
