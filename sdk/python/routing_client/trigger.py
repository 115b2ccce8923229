"""Protocol triggers as the control-tower publishes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Plate:
    """A plate of ``rows`` x ``columns`` wells (each 1-1000)."""

    rows: int
    columns: int

    @property
    def wells(self) -> int:
        return self.rows * self.columns

    def well_name(self, index: int) -> str:
        """The name of well ``index`` (0-based, column-first from the top
        left): on an 8x12 plate 0 is A1, 1 is B1, 8 is A2, 95 is H12; rows
        past Z are AA, AB, ... "" for an index outside the plate."""
        if self.rows < 1 or not 0 <= index < self.wells:
            return ""
        row, col = index % self.rows, index // self.rows
        name, n = "", row + 1
        while n > 0:
            n, r = divmod(n - 1, 26)
            name = chr(ord("A") + r) + name
        return f"{name}{col + 1}"


@dataclass(frozen=True)
class Trigger:
    """A trigger message body, decoded: ``spec`` and ``metadata`` as JSON
    values, ``raw`` the body as received."""

    uuid: str
    api_version: str
    protocol: str
    spec: Any
    plate: Optional[Plate] = None
    metadata: Optional[dict] = None
    raw: bytes = field(default=b"", repr=False)

    def wells(self) -> list:
        """The spec per well: the elements of an array spec (one object per
        well, in well order), or an object spec alone as one element.
        Raises ValueError for any other spec."""
        if isinstance(self.spec, dict):
            return [self.spec]
        if isinstance(self.spec, list) and all(isinstance(w, dict) for w in self.spec):
            return list(self.spec)
        raise ValueError(f"trigger {self.uuid}: spec is neither an object nor an array of objects")


def decode_trigger(body: bytes) -> Trigger:
    """Decodes a trigger message body; ValueError says what is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"trigger: not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("uuid"), str) or not doc["uuid"]:
        raise ValueError("trigger: no uuid")
    plate = None
    if isinstance(doc.get("plate"), dict):
        p = doc["plate"]
        plate = Plate(int(p.get("rows", 0)), int(p.get("columns", 0)))
    return Trigger(
        uuid=doc["uuid"],
        api_version=str(doc.get("apiVersion", "")),
        protocol=str(doc.get("protocol", "")),
        spec=doc.get("spec"),
        plate=plate,
        metadata=doc.get("metadata"),
        raw=bytes(body),
    )
