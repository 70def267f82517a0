"""The pydantic base for every wire document: snake_case in Python, camelCase in JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A frozen model that serialises with Perstack's camelCase field names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        serialize_by_alias=True,
    )

    def to_json(self) -> str:
        """Compact JSON with camelCase keys and unset optional fields left out."""
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def to_dict(self) -> dict[str, object]:
        """A JSON-compatible dict with camelCase keys and unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
