# Two commands do everything on a fresh machine (Python 3.11 + pip):
#   make demo   set up .venv, then run the main job (the musician's flow on the starter drum model)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo demo-digits studio test test-fast bench clean

$(STAMP): pyproject.toml constraints.txt $(addsuffix pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,cluster,studio]" $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

demo-digits: install
	$(BIN)/python scripts/demo_digits.py

# the studio page on the shipped starter (http://localhost:7860); STUDIO_ARGS="ckpt=... port=..."
studio: install
	$(BIN)/diffusionkit studio $(STUDIO_ARGS)

test: install
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_image.py
	$(BIN)/python benchmarks/bench_audio.py
	$(BIN)/python benchmarks/bench_audio_codecs.py --threads 1

clean:
	rm -rf $(VENV) outputs demo_out
