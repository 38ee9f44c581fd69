"""Click options built from `TrainConfig`'s fields: one source of truth for names, defaults, choices and help.

The CLI never re-validates: it builds a `TrainConfig` and lets `TrainConfig.validate` speak; a `ConfigError`
becomes click's usage error (exit 2) naming the flag.
"""

from __future__ import annotations

import dataclasses
import typing

import click

from hogwild.config import TrainConfig
from hogwild.errors import ConfigError


class IntTuple(click.ParamType):
    """A comma-separated list of positive integers, such as ``256,64``."""

    name = "N[,N...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            sizes = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)
        if not sizes:
            self.fail("give at least one size", param, ctx)
        return sizes


class AutoInt(click.ParamType):
    """A positive integer, or the word ``auto`` (None: let the engine decide)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither an integer nor 'auto'", param, ctx)


def _field_type(f):
    """The click type of a field from its annotation string ('float | None' -> float)."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    base = annotation.split("|")[0].strip()
    return {"int": int, "float": float, "str": str, "bool": bool, "tuple": IntTuple()}.get(base, str)


def config_fields(include=None, exclude=()):
    """The `TrainConfig` fields that have a CLI flag, optionally filtered by name."""
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if not meta.get("cli") or meta.get("python_only"):
            continue
        if include is not None and f.name not in include:
            continue
        if f.name in exclude:
            continue
        yield f


def config_options(include=None, exclude=()):
    """Decorator adding one click option per `TrainConfig` field (flag, default, choices and help from it)."""

    def decorate(command):
        for f in reversed(list(config_fields(include, exclude))):
            meta = f.metadata
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            kind = _field_type(f)
            kwargs = {"help": meta["help"], "show_default": True, "envvar": meta.get("envvar"), "show_envvar": bool(meta.get("envvar"))}
            if meta.get("choices"):
                kwargs["type"] = click.Choice(meta["choices"])
            elif meta.get("auto"):
                kwargs["type"] = AutoInt()
            elif kind is not bool:
                kwargs["type"] = kind
            if isinstance(default, tuple):
                kwargs["default"] = ",".join(str(v) for v in default)
            else:
                kwargs["default"] = default
            if default is None and "default" not in meta["help"].lower():
                # click shows nothing for a None default; say so, so that every option documents its default
                kwargs["show_default"] = "none"
            if kind is bool and "/" not in meta["cli"]:
                kwargs["is_flag"] = True
            command = click.option(meta["cli"], f.name, **kwargs)(command)
        return command

    return decorate


def build_config(values, **fixed):
    """A validated `TrainConfig` from parsed click values; a bad value becomes a usage error naming its flag."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kwargs = {k: v for k, v in values.items() if k in names}
    kwargs.update(fixed)
    try:
        return TrainConfig(**kwargs).validate()
    except ConfigError as exc:
        field = next((f for f in config_fields() if f.name == exc.option), None)
        flag = field.metadata["cli"].split("/")[0] if field else None
        if flag is None and exc.option in names:
            from hogwild.config import _flag

            flag = _flag(exc.option)  # a Python-only field the command sets from its own option (--class-weight)
        message = str(exc)
        ctx = click.get_current_context(silent=True)
        if field and field.metadata.get("envvar") and ctx is not None:
            from click.core import ParameterSource

            if ctx.get_parameter_source(field.name) == ParameterSource.ENVIRONMENT:
                message += f" (from ${field.metadata['envvar']})"
        raise click.BadParameter(message, param_hint=f"'{flag}'" if flag else None) from None
