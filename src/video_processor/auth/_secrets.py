"""Helpers that keep secrets out of reprs and logs."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

# Field metadata that marks a dataclass field as secret: ``repr()`` masks it.
SECRET = {"secret": True}


def fingerprint(value: Optional[str]) -> str:
    """Return a short SHA-256 fingerprint that identifies a secret in logs."""
    if not value:
        return "absent"
    import hashlib

    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:8]


def masked_repr(instance: Any) -> str:
    """Build a dataclass repr in which every field marked ``SECRET`` is masked."""
    parts = []
    for field in dataclasses.fields(instance):
        if not field.repr:
            continue
        value = getattr(instance, field.name)
        if field.metadata.get("secret") and value is not None:
            text = "'***'"
        else:
            text = repr(value)
        parts.append(f"{field.name}={text}")
    return f"{type(instance).__name__}({', '.join(parts)})"
