"""The v1alpha1 API: pydantic models of the four kinds, parsed once at the boundary."""

from .document import DocumentError, parse_spec
from .kinds import API_VERSION, GROUP, KINDS, KINDS_BY_NAME, VERSION, Kind

__all__ = ["API_VERSION", "GROUP", "KINDS", "KINDS_BY_NAME", "VERSION", "DocumentError", "Kind", "parse_spec"]
