# The two commands of the README; both install what they need into ./.venv first.
.PHONY: run test lint

run:
	scripts/dev.sh run

test:
	scripts/dev.sh test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
