"""``python -m backend.server``: run a backend in the foreground (``choreo serve`` does the same)."""

from __future__ import annotations

import argparse
import sys

from backend.server.config import add_server_arguments, config_from_args
from backend.server.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.server",
                                     description="Run the choreo inference backend.")
    add_server_arguments(parser)
    return serve(config_from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
