"""Argument parsers of the command-line tools, with help that shows every option's default.

``argument_parser(prog, description, epilog)`` gives an ``argparse.ArgumentParser`` whose ``--help``
keeps the description's line breaks and appends ``(default: ...)`` to every option that does not
state its default itself (flags read "default: off"). Descriptions are plain text (no reST).
"""

from __future__ import annotations

import argparse


class _DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends each option's default to its help, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "default" in text:
            return text
        if action.required:
            return f"{text} (required)" if "required" not in text else text
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def argument_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A parser for ``prog`` whose help lists every option with its default (see the module doc)."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=_DefaultsFormatter
    )
