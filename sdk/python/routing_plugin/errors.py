"""The closed error vocabulary of the plugin protocol.

Each class crosses the wire as an error code, as the Go SDK's sentinels do
(sdk.ErrSkipped, sdk.ErrPermanent, ...). Any other exception a plugin raises
from push or run is a plain, retryable failure.
"""

from __future__ import annotations

from dataclasses import dataclass


class PluginError(Exception):
    """A failure that crosses the wire; as such, retryable."""


class Skip(PluginError):
    """Raised by push when this destination does not handle the trigger
    (a trigger from another source, say). The reason is shown to operators
    and the rows are not retried."""


class Permanent(PluginError):
    """Raised by push when retrying cannot help (the destination refuses the
    rows as they stand): the gateway dead-letters them at once."""


class Unavailable(PluginError):
    """The host could not serve a call now (its store is down, it is
    stopping); retry later."""


class ConfigError(PluginError):
    """The plugin's configuration is missing or invalid; the message names
    the variable."""


class NotFound(PluginError):
    """A key or object that does not exist."""


class TooLarge(PluginError):
    """A value passed a limit (a State value, a message)."""


@dataclass(frozen=True)
class FieldError:
    """One validation failure: the field by its JSON path (e.g.
    "plate.rows", "spec[2]") and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class ValidationError(PluginError):
    """Input failed validation: raised by Host.emit when the control-tower
    rejects a trigger, and by Trigger.validate. fields lists every failure."""

    def __init__(self, fields: list[FieldError] | tuple[FieldError, ...]):
        self.fields = tuple(fields)
        super().__init__("; ".join(str(f) for f in self.fields))
