# The entry points. `make demo` and `make test` are the README's quick start; each
# sets up everything it needs first (scripts/bootstrap.sh is idempotent and quick when
# nothing changed).
.PHONY: demo test lint bench docs setup hypothesis-long clean

VENV ?= .venv
export VENV

demo: setup
	$(VENV)/bin/realtalk demo

test: setup
	scripts/test.sh

lint: setup
	scripts/lint.sh

bench: setup
	$(VENV)/bin/python benches/bench_codec.py
	$(VENV)/bin/python benches/bench_resample.py
	bash scripts/audio_up.sh; $(VENV)/bin/python benches/bench_audio.py; bash scripts/audio_down.sh

# The API reference, from the docstrings (and _core.pyi for the native module), in docs/api/.
docs: setup
	scripts/docs.sh docs/api

# Property tests with fresh random examples and many more of them (not part of `test`).
hypothesis-long: setup
	HYPOTHESIS_PROFILE=long $(VENV)/bin/python -m pytest -q tests

setup:
	scripts/bootstrap.sh

clean:
	rm -rf target $(VENV) python/realtalk/*.so .pytest_cache .hypothesis .mypy_cache .ruff_cache
