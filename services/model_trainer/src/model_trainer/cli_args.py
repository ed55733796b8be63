"""argparse pieces every `model-trainer` command shares: help that shows defaults, and the API's
URL and key accepted before or after the subcommand."""

from __future__ import annotations

import argparse
import os
from typing import TypeAlias

from model_trainer.client import API_KEY_ENV

URL_ENV = "MODEL_TRAINER_URL"
DEFAULT_URL = "http://127.0.0.1:8000"
# A parser's subcommands (argparse's class is generic only to type checkers).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except where there is none to show (None, a
    flag's False, or a value the main parser holds)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def add_connection_options(parser: argparse.ArgumentParser, *, main: bool) -> None:
    """`--url` and `--api-key`. The main parser holds the defaults (the environment's, else
    built in); a subcommand's copies default to SUPPRESS, so they set a value only when given
    after the subcommand and never undo one given before it."""
    if main:
        url_default, url_help = os.environ.get(URL_ENV, DEFAULT_URL), f"(${URL_ENV} sets it)"
    else:
        url_default, url_help = argparse.SUPPRESS, f"(default ${URL_ENV}, else {DEFAULT_URL})"
    parser.add_argument("--url", default=url_default, help=f"the API's base URL {url_help}")
    parser.add_argument(
        "--api-key",
        default=None if main else argparse.SUPPRESS,
        help=f"the API key to send (default ${API_KEY_ENV})",
    )


def _api_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    add_connection_options(parser, main=False)
    return parser


API_OPTIONS = _api_options()


def add_command(
    commands: Commands, name: str, text: str, *, api: bool = False
) -> argparse.ArgumentParser:
    """A subcommand whose --help says `text` and every option's default; `api` commands also
    take --url and --api-key after their name."""
    return commands.add_parser(
        name,
        help=text,
        description=text,
        formatter_class=HelpFormatter,
        parents=[API_OPTIONS] if api else [],
    )
