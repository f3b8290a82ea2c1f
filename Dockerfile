# The Persona API image: `docker compose up` runs it against MongoDB 8 (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned dependencies first, so that this layer is reused while only the code changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY personas ./personas
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home personas

USER personas
EXPOSE 8000
CMD ["personas", "serve", "--host", "0.0.0.0"]
