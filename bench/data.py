"""Seed data: personas whose metadata looks like the original design's examples."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Final

from personas import domain

# How often each tag appears; "prod" is the tag the listing scenarios filter on.
TAG_WEIGHTS: Final = {
    "prod": 0.40,
    "dev": 0.35,
    "staging": 0.15,
    "approved": 0.30,
    "pending-approval": 0.10,
    "tested": 0.25,
    "experiment": 0.08,
    "team-alpha": 0.12,
    "team-beta": 0.10,
    "multilingual": 0.08,
    "high-performance": 0.06,
    "external-integration": 0.05,
    "deprecated": 0.03,
}
STATUSES: Final = ("draft", "in-review", "approved", "production", "retired")
ENVIRONMENTS: Final = ("development", "staging", "production")
DEPARTMENTS: Final = ("support", "customer_success", "sales", "engineering", "marketing", "legal")
LANGUAGES: Final = ("en", "es", "fr", "de", "pt", "ja", "it", "nl")
COMPLEXITY: Final = ("beginner", "intermediate", "advanced")
PEOPLE: Final = ("team-lead", "dev1", "dev2", "qa", "lead", "reviewer", "pm", "architect")
ROLES: Final = (
    "Support Agent",
    "Sales Assistant",
    "Onboarding Guide",
    "Code Reviewer",
    "Legal Summarizer",
    "Travel Planner",
    "Tutor",
    "Research Analyst",
    "Billing Helper",
    "Release Notes Writer",
)
TONES: Final = ("friendly", "concise", "formal", "playful", "empathetic", "direct")
SENTENCES: Final = (
    "Answer in the customer's language and keep a {tone} tone.",
    "Never invent order numbers, prices or policies; say when you do not know.",
    "Ask one clarifying question when the request is ambiguous.",
    "Summarize long threads in three bullet points before answering.",
    "Escalate to a human when the customer mentions legal action or a safety issue.",
    "Cite the knowledge-base article you relied on, by its title.",
    "Keep answers under 150 words unless the user asks for detail.",
    "Use the customer's name when they gave it, and never ask for passwords.",
    "Prefer step-by-step instructions with numbered lists for procedures.",
    "Offer a follow-up action at the end of every answer.",
)


def email(rng: random.Random) -> str:
    return f"{rng.choice(PEOPLE)}@company.com"


def day(rng: random.Random) -> str:
    return (date(2025, 1, 1) + timedelta(days=rng.randrange(365))).isoformat()


def tags(rng: random.Random) -> list[str]:
    chosen = [tag for tag, weight in TAG_WEIGHTS.items() if rng.random() < weight]
    return chosen or ["dev"]


def metadata(rng: random.Random) -> dict[str, Any] | None:
    """One persona's metadata: tags, version and status, plus the design's nested objects."""
    if rng.random() < 0.03:
        return None  # personas from before metadata existed
    chosen = tags(rng)
    result: dict[str, Any] = {
        "tags": chosen,
        "version": f"{rng.randrange(4)}.{rng.randrange(10)}.{rng.randrange(20)}",
        "status": rng.choice(STATUSES),
    }
    if rng.random() < 0.7:
        result["deployment"] = {
            "environment": "production" if "prod" in chosen else rng.choice(ENVIRONMENTS),
            "last_tested": day(rng),
            "approved_by": email(rng),
        }
    if rng.random() < 0.6:
        result["performance"] = {
            "avg_rating": round(rng.uniform(2.5, 5.0), 1),
            "usage_count": rng.randrange(50_000),
        }
    if rng.random() < 0.6:
        result["custom_fields"] = {
            "department": rng.choice(DEPARTMENTS),
            "language": rng.choice(LANGUAGES),
            "complexity_level": rng.choice(COMPLEXITY),
        }
    if "pending-approval" in chosen:
        result["submitted_by"] = email(rng)
        result["submitted_at"] = f"{day(rng)}T{rng.randrange(24):02d}:30:00Z"
        result["reviewers"] = [email(rng) for _ in range(rng.randint(1, 3))]
    if "experiment" in chosen:
        result["experiment"] = {
            "name": f"support_tone_test_{rng.randrange(20)}",
            "variant": rng.choice(TONES),
            "start_date": "2025-01-01",
            "end_date": "2025-01-31",
        }
    if "multilingual" in chosen:
        result["languages"] = rng.sample(LANGUAGES, rng.randint(2, 4))
        result["content_type"] = "customer_support"
    if "team-alpha" in chosen or "team-beta" in chosen:
        result["owner"] = email(rng)
        result["collaborators"] = [email(rng) for _ in range(rng.randint(1, 4))]
    if "high-performance" in chosen:
        result["metrics"] = {
            "avg_response_time": round(rng.uniform(0.3, 3.0), 2),
            "success_rate": round(rng.uniform(0.85, 1.0), 3),
            "user_satisfaction": round(rng.uniform(3.0, 5.0), 1),
        }
    if "external-integration" in chosen:
        result["integrations"] = {
            "slack": {"webhook_url": "https://hooks.slack.example/services/T000/B000"},
            "jira": {"project_key": f"PROJ-{rng.randrange(1000)}"},
        }
    return result


def content(rng: random.Random, role: str) -> str:
    """A system prompt of a few hundred to about two thousand characters."""
    tone = rng.choice(TONES)
    rules = [rng.choice(SENTENCES).format(tone=tone) for _ in range(rng.randint(3, 14))]
    return f"You are a {tone} {role.lower()} for Example Corp. " + " ".join(rules)


def persona(rng: random.Random, index: int) -> domain.NewPersona:
    """The `index`-th seed persona, validated by the same rules the API applies."""
    role = rng.choice(ROLES)
    return domain.new_persona(
        name=f"{role} {index}",
        content=content(rng, role),
        metadata=metadata(rng),
    )


def personas(count: int, seed: int = 20250115) -> list[domain.NewPersona]:
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    return [persona(rng, index) for index in range(count)]
