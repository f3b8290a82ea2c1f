"""The metadata examples of the original design, and a walk over their leaf paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DESIGN_EXAMPLES: dict[str, dict[str, Any]] = {
    "structured": {
        "tags": ["dev", "prod", "approved"],
        "version": "2.1.0",
        "deployment": {
            "environment": "production",
            "last_tested": "2025-01-15",
            "approved_by": "team-lead@company.com",
        },
        "performance": {"avg_rating": 4.2, "usage_count": 150},
        "custom_fields": {
            "department": "support",
            "language": "en",
            "complexity_level": "intermediate",
        },
    },
    "version management": {
        "tags": ["prod", "approved"],
        "version": "2.0.0",
        "status": "production",
    },
    "environment tracking": {"tags": ["dev"], "environment": "development", "tested": False},
    "approval workflow": {
        "tags": ["pending-approval"],
        "submitted_by": "developer@company.com",
        "submitted_at": "2025-01-15T10:30:00Z",
        "reviewers": ["lead@company.com"],
    },
    "performance tracking": {
        "tags": ["high-performance"],
        "metrics": {"avg_response_time": 1.2, "success_rate": 0.98, "user_satisfaction": 4.5},
    },
    "content management": {
        "tags": ["multilingual"],
        "languages": ["en", "es", "fr"],
        "content_type": "customer_support",
        "last_updated": "2025-01-10",
    },
    "team organization": {
        "tags": ["team-alpha"],
        "department": "customer_success",
        "owner": "team-lead@company.com",
        "collaborators": ["dev1@company.com", "dev2@company.com"],
    },
    "integration metadata": {
        "tags": ["external-integration"],
        "integrations": {
            "slack": {"webhook_url": "https://hooks.slack.com/..."},
            "jira": {"project_key": "PROJ-123"},
        },
    },
    "a/b testing": {
        "tags": ["experiment"],
        "experiment": {
            "name": "support_tone_test",
            "variant": "friendly",
            "start_date": "2025-01-01",
            "end_date": "2025-01-31",
        },
    },
    "creation request": {
        "tags": ["prod", "approved"],
        "version": "2.0.0",
        "status": "production",
        "department": "customer_success",
    },
}


def leaf_filters(metadata: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) pairs that must each find `metadata`: every leaf, every array element."""
    for key, value in metadata.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield path, value
            yield from leaf_filters(value, f"{path}.")
        elif isinstance(value, list):
            yield path, value
            for item in value:
                yield path, item
        else:
            yield path, value
