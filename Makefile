# Two commands do everything on a fresh machine (Python 3.11 + pip):
#   make demo   set up .venv, then run the main job (the musician's flow on the starter drum model)
#   make test   set up .venv, then run the test suites: the core's (tests/, with only the test-only
#               toy plugin visible), then each plugin's tests/, each its own pytest session
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
# test-only plugins (entry points the core's tests run against); installed for tests, never shipped
TEST_PLUGINS := $(sort $(dir $(wildcard tests/plugins/*/pyproject.toml)))
# the shipped plugins' entry-point names (plugins/diffusionkit-<name>/), comma-separated
comma := ,
SHIPPED_NAMES := $(subst $() ,$(comma),$(strip $(patsubst plugins/diffusionkit-%/,%,$(PLUGINS))))
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo demo-digits studio test test-fast bench clean

$(STAMP): pyproject.toml constraints.txt $(addsuffix pyproject.toml,$(PLUGINS) $(TEST_PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,cluster,studio,text]" $(addprefix -e ,$(PLUGINS) $(TEST_PLUGINS))
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

demo-digits: install
	$(BIN)/python scripts/demo_digits.py

# the studio page on the shipped starter (http://localhost:7860); STUDIO_ARGS="ckpt=... port=..."
studio: install
	$(BIN)/diffusionkit studio $(STUDIO_ARGS)

# One pytest session per suite: the core's tests/ with only the toy plugin visible (proof that the
# core needs no built-in plugin), then each plugin's tests/ with the shipped plugins visible (as a
# user installs them: no test-only plugin). Every session runs; the target fails if any session
# failed (exit 5, "no tests collected" under a -k filter, is not a failure).
define test_sessions
	@failed=""; \
	DIFFUSIONKIT_PLUGINS=toy $(BIN)/python -m pytest -n 2 $(1) $(PYTEST_ARGS) tests; \
	rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || failed="$$failed tests"; \
	for suite in $(addsuffix tests,$(PLUGINS)); do \
	    DIFFUSIONKIT_PLUGINS=$(SHIPPED_NAMES) $(BIN)/python -m pytest -n 2 $(1) $(PYTEST_ARGS) $$suite; \
	    rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || failed="$$failed $$suite"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: failed sessions:$$failed"; exit 1; fi
endef

test: install
	$(call test_sessions,)

test-fast: install
	$(call test_sessions,-m "not slow")

bench: install
	$(BIN)/pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/bench_image.py
	$(BIN)/python benchmarks/bench_audio.py
	$(BIN)/python benchmarks/bench_audio_codecs.py --threads 1
	$(BIN)/python benchmarks/bench_dit.py
	$(BIN)/python benchmarks/bench_vs_diffusers.py
	$(BIN)/python benchmarks/bench_defaults.py
	$(BIN)/python benchmarks/bench_cold_start.py
	$(BIN)/python benchmarks/bench_label_ceiling.py
	$(BIN)/python benchmarks/bench_gm_kits.py   # one line without fluidsynth + fluid-soundfont-gm
	$(BIN)/python benchmarks/bench_sf2_kits.py  # one line without avldrums.lv2-soundfont
	$(BIN)/python benchmarks/bench_text_words.py  # one line without the [text] extra

clean:
	rm -rf $(VENV) outputs demo_out
