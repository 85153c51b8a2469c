"""`--config.x=y` for the tools that read models (probe, embed, analyze): overrides of a `random:`
model's config, parsed by ml_collections exactly as `python -m leaf_ssl.train` parses its own.

    python -m leaf_ssl.probe --ckpt random:configs/demo.py:leaf --config.frontend.n_filters=64 --task ...
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import ml_collections
from absl import flags
from ml_collections import config_flags

from leaf_ssl.cli import exits
from leaf_ssl.inference.frozen_model import FrozenModel, load_frozen_model

PREFIX = "--config."
EPILOG = ("--config.<field>=<value> (repeatable) changes the config of every random: model before it is built, "
          "with the syntax of `python -m leaf_ssl.train` (e.g. --config.frontend.n_filters=64)")


def parse_args_and_overrides(parser: argparse.ArgumentParser,
                             argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The parser's arguments, and the `--config.x=y` (or `--config.x y`) overrides among them."""
    args, rest = parser.parse_known_args(argv)
    overrides, index = [], 0
    while index < len(rest):
        argument = rest[index]
        if not argument.startswith(PREFIX):
            parser.error(f"unrecognized argument: {argument}")
        if "=" not in argument:  # `--config.x y`
            if index + 1 == len(rest):
                parser.error(f"{argument} needs a value")
            argument, index = f"{argument}={rest[index + 1]}", index + 1
        overrides.append(argument)
        index += 1
    return args, overrides


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> ml_collections.ConfigDict:
    """`config` with `overrides` applied by ml_collections' config flag parser (types checked against
    the fields; an unknown field is an error). Raises ValueError naming the bad override."""
    argv = ["leaf_ssl", *overrides]
    flag_values = flags.FlagValues()
    try:
        # the config flag registers a field flag for each override it finds in `sys_argv`
        config_flags.DEFINE_config_dict("config", config, flag_values=flag_values, sys_argv=argv)
        flag_values(argv)
    except PARSE_ERRORS as error:
        raise ValueError(parse_error_reason(error, argv)) from None
    return flag_values.config


# config_flags reports a bad value as a flags.Error, an unknown field as an AttributeError or KeyError
PARSE_ERRORS = (flags.Error, AttributeError, KeyError)


def parse_error_reason(error: Exception, argv: list[str]) -> str:
    """One line for an error of ml_collections' config flag parsing (its messages span lines)."""
    if isinstance(error, flags.Error):
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return f"{lines[0]} {lines[-1]}" if len(lines) > 1 else lines[0]
    overrides = [arg.split("=")[0] for arg in argv[1:] if arg.startswith(PREFIX)]
    while error.args and isinstance(error.args[0], Exception):  # an AttributeError wrapping the KeyError
        error = error.args[0]
    missing = " ".join(str(error.args[0] if error.args else error).split())  # str(KeyError) would quote it
    return f"no such config field in {' / '.join(overrides)}: {missing}"


HELP_FLAGS = {"--help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}


def parse_absl_flags(argv: list[str], config: flags.FlagHolder) -> list[str]:
    """absl's flag parsing (for a tool with a config file flag `config`, e.g. train's --config and the
    grid's --grid), with a bad config file argument or override reported in one line
    (ml_collections would print a traceback) and exit status 2, as for any usage error."""
    try:
        remaining = flags.FLAGS(argv)
        # ml_collections raises for a config file it could not open only when the config is first read
        config.value.keys  # noqa: B018
        return remaining
    except PARSE_ERRORS as error:
        exits.usage_error(parse_error_reason(error, argv))
    except OSError as error:  # its message lists every path tried; the last line says why
        exits.usage_error(f"config file: {str(error).strip().splitlines()[-1].strip()}")
    except Exception as error:  # raised by the config file's own code while loading it (a syntax error, an import)
        exits.usage_error(f"config file failed to load: {type(error).__name__}: {error}")
    except SystemExit as stop:
        # absl exits 1 after printing the help it was asked for; asking for help is not a failure
        if stop.code == 1 and set(argv[1:]) & HELP_FLAGS:
            sys.exit(0)
        raise


def load_model(spec: str, overrides: list[str]) -> FrozenModel:
    """`load_frozen_model(spec)`, with the overrides applied to a `random:` spec's config; they are
    appended to the model's `source`, so its results are told apart from the plain spec's."""
    if not overrides:
        return load_frozen_model(spec)
    frozen = load_frozen_model(spec, configure=lambda config: apply_overrides(config, overrides))
    return dataclasses.replace(frozen, source=" ".join([frozen.source, *overrides]))
