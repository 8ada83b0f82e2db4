"""The config for people to read, from the declarations in amp_jax.config: a case's resolved config as
YAML with each key's doc (`amp-jax config CASE`), and every key's default and doc (`amp-jax train --help`)."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import yaml

from amp_jax.config import Config

WIDTH = 110
NBSP = "\u00a0"


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def yaml_value(value) -> str:
    """One value in YAML's flow style, on one line (e.g. [head, left_foot], 0.0001, null)."""
    if isinstance(value, str) and "\n" in value:
        return json.dumps(value)  # a double-quoted YAML scalar with its line breaks escaped
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1_000_000, sort_keys=False)
    return text.removesuffix("...\n").strip()


def _rules(field: dataclasses.Field) -> str:
    """The field's range rules, e.g. " [> 0]" (no-break spaces inside: `_wrap` keeps them on one line)."""
    labels = [r.label for r in field.metadata.get("rules", ())]
    return f" [{', '.join(labels)}]".replace(" ", NBSP).replace(NBSP + "[", " [") if labels else ""


def _wrap(text: str, indent: str) -> list[str]:
    return [line.replace(NBSP, " ") for line in textwrap.wrap(text, WIDTH, initial_indent=indent + "# ",
                                                              subsequent_indent=indent + "# ")]


def _doc(field: dataclasses.Field) -> str:
    return field.metadata.get("doc", "") + _rules(field)


def summary(field: dataclasses.Field) -> str:
    """A field doc's first sentence."""
    doc = field.metadata.get("doc", "")  # every field has one (tests/test_config_docs.py)
    return doc.split(". ", 1)[0].removesuffix(".") + "." if doc else ""


def commented_yaml(cfg: Config, header: str = "") -> str:
    """cfg as YAML, each key after its doc (and range rule) as a comment; a value that differs from the
    default ends with `# default: X`. Parses back to config.to_dict(cfg)."""
    lines = [f"# {line}" for line in header.splitlines()]

    def section(value, default, indent: str, top: bool) -> None:
        for f in dataclasses.fields(value):
            v, d = getattr(value, f.name), getattr(default, f.name)
            if top and dataclasses.is_dataclass(v):
                lines.append("")
            lines.extend(_wrap(_doc(f), indent))
            if dataclasses.is_dataclass(v):
                lines.append(f"{indent}{f.name}:")
                section(v, d, indent + "  ", False)
            else:
                differs = f"  # default: {yaml_value(d)}" if v != d else ""
                lines.append(f"{indent}{f.name}: {yaml_value(v)}{differs}")

    section(cfg, Config(), "", True)
    return "\n".join(lines) + "\n"


def keys_help() -> str:
    """Every config key, one line each (KEY = DEFAULT [rule]  summary), grouped by section."""
    lines = ["config keys, with their defaults (MimicKit's amp_humanoid) and range rules; set any with "
             "--set KEY=VALUE,", "see a case's values with `amp-jax config CASE`:"]

    def section(value, path: str, doc: str) -> None:
        fields = dataclasses.fields(value)
        lines.append("")
        lines.append(f"{path.removesuffix('.') or 'top level'}: {doc}")
        for f in fields:
            v = getattr(value, f.name)
            if not dataclasses.is_dataclass(v):
                key = f"{path}{f.name} = {yaml_value(v)}{_rules(f)}".replace(NBSP, " ")
                lines.append(f"  {key:<56} {summary(f)}")
        for f in fields:
            v = getattr(value, f.name)
            if dataclasses.is_dataclass(v):
                section(v, f"{path}{f.name}.", summary(f))

    section(Config(), "", "the case")
    return "\n".join(lines)
