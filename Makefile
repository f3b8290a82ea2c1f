PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck typescript unit schema lock clean graphiql-assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/personas serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# The TypeScript example: codegen over schema.graphql, then tsc --strict over the result.
TS := examples/typescript
TS_STAMP := $(TS)/node_modules/.installed

$(TS_STAMP): $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(TS_STAMP)

typescript: $(TS_STAMP)
	cd $(TS) && npm run --silent codegen -- --silent && npm run --silent typecheck

test: lint typecheck typescript unit

schema: $(STAMP)
	$(BIN)/personas schema > schema.graphql

# Re-resolve every dependency to its newest allowed version and pin it exactly.
lock: $(BIN)/python
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable --exclude personas > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(TS)/node_modules $(TS)/src/gql

# Refresh GraphiQL's browser assets (personas/static/graphiql/vendor) from the npm registry at
# the versions pinned in the script; commit the result.
graphiql-assets:
	scripts/graphiql-assets

# Not part of `make test`: seeds 10,000 personas, starts the server and the floor, drives
# load with wrk (README: Performance). Options: make bench BENCH_ARGS="--rounds 2 --duration 5"
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)
