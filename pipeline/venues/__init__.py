"""Venue adapters behind one interface (`VenueClient`)."""

from .base import VenueClient

__all__ = ["VenueClient"]
