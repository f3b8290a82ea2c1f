"""Persona API: LLM personas with free-form JSON metadata, served over GraphQL and REST."""
