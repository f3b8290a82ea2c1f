"""The REST API of the original design: /v1/personas over the same services and rules."""
