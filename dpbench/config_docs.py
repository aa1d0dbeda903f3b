"""A config's documentation, read from its source: each dataclass field's comment (the one beside it and
the comment lines right above it), and the rows ``dpbench config POLICY`` prints (field, type, value, the
paper's value, documentation). The source is the one place a field is explained.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from typing import Any

from dpbench.config import type_name


def field_docs(cls: type) -> dict[str, str]:
    """``{field: documentation}`` for a config dataclass and its bases: each field's trailing
    comment, preceded by the comment lines right above it. Fields without any comment map to ""."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        docs.update(_comments_by_field(textwrap.dedent(source), {f.name for f in dataclasses.fields(klass)}))
    return {f.name: docs.get(f.name, "") for f in dataclasses.fields(cls)}


def _comments_by_field(source: str, names: set[str]) -> dict[str, str]:
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    for i, line in enumerate(lines, start=1):
        name = line.strip().split(":", 1)[0]
        if name not in names or not line.startswith("    ") or line.startswith("     "):
            continue
        above, j = [], i - 1
        while j in comments and lines[j - 1].strip().startswith("#"):
            above.insert(0, comments[j])
            j -= 1
        out[name] = " ".join([*above, comments.get(i, "")]).strip()
    return out


def describe(cfg: Any, paper: Any | None = None, prefix: str = "") -> list[tuple[str, str, str, str, str]]:
    """Rows ``(field, type, value, paper value, documentation)`` for a config and its nested
    configs (``vision.widths``), for ``dpbench config``."""
    hints = typing.get_type_hints(type(cfg))
    docs = field_docs(type(cfg))
    rows = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        ref = getattr(paper, f.name, None) if paper is not None else None
        if dataclasses.is_dataclass(value):
            rows += describe(value, ref if dataclasses.is_dataclass(ref) else None, f"{prefix}{f.name}.")
            continue
        rows.append(
            (
                f"{prefix}{f.name}",
                type_name(hints[f.name]),
                _show(value),
                _show(ref) if paper is not None else "",
                docs[f.name],
            )
        )
    return rows


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
