# The entry points. `make demo` and `make test` are the README's quick start; each
# sets up everything it needs first (scripts/bootstrap.sh is idempotent and quick when
# nothing changed).
.PHONY: demo test lint bench bench-latency docs setup hypothesis-long fuzz soak soak-sessions clean

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
	$(MAKE) bench-latency

# The latency budget end to end (realtalk bench): realtalk and the reference Python
# pipeline over JACK's loopback, with and without GIL pressure; the report, the numbers
# and the plot go to bench-results/ (git ignores it). About 3 minutes.
bench-latency: setup
	bash scripts/audio_up.sh; $(VENV)/bin/realtalk bench --out bench-results; \
	status=$$?; bash scripts/audio_down.sh; exit $$status

# The API reference, from the docstrings (and _core.pyi for the native module), in docs/api/.
docs: setup
	scripts/docs.sh docs/api

# Property tests with fresh random examples and many more of them (not part of `test`).
hypothesis-long: setup
	HYPOTHESIS_PROFILE=long $(VENV)/bin/python -m pytest -q tests

# libFuzzer on the Rust core (fuzz/): FUZZ_SECONDS (default 60) per target; name targets
# with FUZZ_TARGETS="events b64" (all by default). Installs cargo-fuzz if missing. `test`
# runs every target for 5 s instead (scripts/fuzz_brief.sh, no cargo-fuzz).
FUZZ_SECONDS ?= 60
export FUZZ_SECONDS
fuzz:
	scripts/fuzz.sh $(FUZZ_TARGETS)

# The soak (benches/soak.py; `test` runs 5 simulated minutes of it): one simulated hour of
# conversation against the embedded server in about half a minute, the server in its own
# process so that the client's RSS is measured alone; and 100 concurrent sessions against
# one server in this process. Exit 1 if a balance or the RSS bound fails; the reports are
# written to the top of the tree (git ignores them).
soak: setup
	$(VENV)/bin/python benches/soak.py --simulated-s 3600 --server process --report soak-report.md

soak-sessions: setup
	$(VENV)/bin/python benches/soak.py --sessions 100 --turns 5 --report soak-sessions-report.md

setup:
	scripts/bootstrap.sh

clean:
	rm -rf target $(VENV) python/realtalk/*.so .pytest_cache .hypothesis .mypy_cache .ruff_cache
