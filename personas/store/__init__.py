"""The store: the only code that talks to MongoDB. It returns domain objects and raises
domain errors; tenant scoping and scopes live here."""

from personas.store.connection import client_options, time_limit, wait_until_ready
from personas.store.keys import KeyStore
from personas.store.personas import PersonaStore

__all__ = ["KeyStore", "PersonaStore", "client_options", "time_limit", "wait_until_ready"]
