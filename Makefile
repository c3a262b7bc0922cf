# The two commands of the README; both install what they need into ./.venv first.
.PHONY: run test lint labextension

run:
	scripts/dev.sh run

test:
	scripts/dev.sh test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# Rebuild extensions/labextension from extensions/labextension-src (needs Node.js 20.19+ and
# the npm registry); commit both. Every install uses the committed build.
labextension:
	scripts/dev.sh labextension
