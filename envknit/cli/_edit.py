"""Editing ``envknit.yaml`` in place: a line-based edit that keeps comments and order.

PyYAML drops comments when it writes, so ``add`` and ``remove`` edit the known structure
(``environments: {env: {packages: [- item]}}``) line by line, then parse the result and compare
it with the intended data. Only when the file is laid out in a way this editor does not
understand (flow-style lists, multi-line items) is the file re-written with ``yaml.safe_dump``,
and the caller is told that comments were lost.

Kept over a round-trip library (ruamel.yaml): an edit here changes exactly the one line it
must, so a committed envknit.yaml shows a one-line diff; ruamel re-emits the whole document
(re-indenting lists, moving comment spacing) and would add a dependency for two commands.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .._yamlfile import safe_load_bounded
from ..config import requirement_name

__all__ = ["EditResult", "edit_requirement", "yaml_scalar"]

_ENVS_RE = re.compile(r"^environments:\s*(#.*)?$")


@dataclass(frozen=True, kw_only=True, slots=True)
class EditResult:
    """The new text and whether comments/layout could be kept."""

    text: str
    kept_layout: bool


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when that reads back the same, else double-quoted."""
    plain_ok = (
        "#" not in value
        and ": " not in value
        and not value.startswith(("-", "?", "[", "{", "!", "&", "*", "'", '"', "%", "@", "`"))
    )
    if plain_ok:
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass  # not valid as a plain scalar: quote it below
    return json.dumps(value)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _significant(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _block_end(lines: list[str], start: int, parent_indent: int) -> int:
    """Index after the last significant line indented deeper than ``parent_indent``."""
    end = start
    for i in range(start, len(lines)):
        if not _significant(lines[i]):
            continue
        if _indent(lines[i]) <= parent_indent:
            break
        end = i + 1
    return end


def _item_name(line: str) -> str | None:
    body = line.strip()[2:]
    try:
        value = yaml.safe_load(body)
    except yaml.YAMLError:
        return None
    if not isinstance(value, str):
        return None  # a mapping item ({name, version}): the safe_dump fallback handles it
    try:
        return requirement_name(value)
    except ValueError:
        return None


def _text_edit(text: str, env: str, key: str, name: str, item: str | None) -> str | None:
    """The edited text, or None when the layout is not one this editor handles."""
    lines = text.splitlines()
    new_line = f"- {yaml_scalar(item)}" if item is not None else None
    envs_at = next((i for i, ln in enumerate(lines) if _ENVS_RE.match(ln)), None)
    if envs_at is None:
        if new_line is None:
            return text
        if any(re.match(r"^environments\s*:", ln) for ln in lines):
            return None
        lines += ["environments:", f"  {env}:", f"    {key}:", f"      {new_line}"]
        return "\n".join(lines) + "\n"
    envs_end = _block_end(lines, envs_at + 1, 0)
    children = [i for i in range(envs_at + 1, envs_end) if _significant(lines[i])]
    unit = _indent(lines[children[0]]) if children else 2
    env_re = re.compile(rf"^ {{{unit}}}{re.escape(env)}:\s*(#.*)?$")
    env_at = next((i for i in children if env_re.match(lines[i])), None)
    if env_at is None:
        if any(re.match(rf"^ {{{unit}}}{re.escape(env)}\s*:", lines[i]) for i in children):
            return None
        if new_line is None:
            return text
        pad = " " * unit
        lines[envs_end:envs_end] = [f"{pad}{env}:", f"{pad * 2}{key}:", f"{pad * 2}  {new_line}"]
        return "\n".join(lines) + "\n"
    env_end = _block_end(lines, env_at + 1, unit)
    keys = [i for i in range(env_at + 1, env_end) if _significant(lines[i])]
    kind = _indent(lines[keys[0]]) if keys else unit * 2
    key_re = re.compile(rf"^ {{{kind}}}{re.escape(key)}:\s*(.*?)\s*$")
    key_at = next((i for i in keys if key_re.match(lines[i])), None)
    pad = " " * kind
    if key_at is None:
        if new_line is None:
            return text
        lines[env_end:env_end] = [f"{pad}{key}:", f"{pad}  {new_line}"]
        return "\n".join(lines) + "\n"
    m = key_re.match(lines[key_at])
    assert m is not None
    rest = m.group(1)
    if rest.startswith("[]"):
        if new_line is None:
            return text
        comment = rest[2:].strip()
        lines[key_at] = f"{pad}{key}:" + (f"  {comment}" if comment else "")
        lines.insert(key_at + 1, f"{pad}  {new_line}")
        return "\n".join(lines) + "\n"
    if rest and not rest.startswith("#"):
        return None  # flow-style list or a scalar: not handled line by line
    items: list[int] = []
    for i in range(key_at + 1, len(lines)):
        if not _significant(lines[i]):
            continue
        stripped = lines[i].lstrip(" ")
        if stripped.startswith("- ") and _indent(lines[i]) >= kind:
            items.append(i)
            continue
        if _indent(lines[i]) > kind:
            return None  # a continuation line (multi-line item): not handled line by line
        break
    for i in items:
        if _item_name(lines[i]) == name:
            if new_line is None:
                del lines[i]
                if len(items) == 1:  # the list is now empty: keep it a list, not null
                    lines[key_at] = f"{pad}{key}: []" + (f"  {rest}" if rest else "")
            else:
                lines[i] = " " * _indent(lines[i]) + new_line
            return "\n".join(lines) + "\n"
    if new_line is None:
        return text
    if items:
        last = items[-1]
        lines.insert(last + 1, " " * _indent(lines[last]) + new_line)
    else:
        lines.insert(key_at + 1, f"{pad}  {new_line}")
    return "\n".join(lines) + "\n"


def _expected(data: Any, env: str, key: str, name: str, item: str | None) -> dict[str, Any]:
    result: dict[str, Any] = copy.deepcopy(data) if isinstance(data, dict) else {}
    envs = result.setdefault("environments", {})
    if envs is None:
        envs = result["environments"] = {}
    body = envs.get(env)
    if body is None:
        if item is None:
            return result
        body = envs[env] = {}
    current = body.get(key) or []
    kept = []
    replaced = False
    for value in current:
        req_name = value.get("name") if isinstance(value, dict) else value
        same = isinstance(req_name, str) and requirement_name(req_name) == name
        if same and item is not None and not replaced:
            kept.append(item)
            replaced = True
        elif not same:
            kept.append(value)
    if item is not None and not replaced:
        kept.append(item)
    if key in body or kept:
        body[key] = kept
    return result


def edit_requirement(text: str, env: str, key: str, name: str, item: str | None) -> EditResult:
    """Add or replace (``item``) or remove (``item=None``) requirement ``name`` of ``env.key``."""
    data = safe_load_bounded(text) if text.strip() else {}
    expected = _expected(data, env, key, name, item)
    edited = _text_edit(text, env, key, name, item)
    if edited is not None:
        try:
            if safe_load_bounded(edited) == expected:
                return EditResult(text=edited, kept_layout=True)
        except yaml.YAMLError:
            pass  # the line edit produced something unparsable: use the fallback below
    return EditResult(text=yaml.safe_dump(expected, sort_keys=False), kept_layout=False)
