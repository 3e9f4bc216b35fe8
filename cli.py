"""``timeseg`` (also ``python -m timeseg``): the engine's and the model builder's command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:  # a Ctrl-C while the libraries load: one line, not their traceback (the run's own: core.cli.run_command)
        from .core import cli as engine_cli
        from .models import cli as model_cli

        parser, commands = engine_cli.main_parser(
            "timeseg", "TimeSeg: land-cover and change maps from satellite image time series")
        engine_cli.add_commands(commands)
        model_cli.add_commands(commands)  # argparse only: torch is imported when a model command runs
        return engine_cli.run_main(parser, argv)
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m timeseg.cli, as python -m timeseg
    raise SystemExit(main())
