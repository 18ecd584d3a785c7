# Quick start: `make demo` and `make test`.  Both create .venv when it is
# missing (or stale against pyproject.toml/constraints.txt) and install into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sat-mir-installed
# Offline-friendly defaults: no hub look-ups, no TensorFlow banner.
export HF_HUB_OFFLINE ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup system-deps demo test clean-demo help

help:
	@echo "make demo   - set up .venv if needed, then extract features from the bundled demo dataset"
	@echo "make test   - set up .venv if needed, then run the test suite"
	@echo "make setup  - only create/update .venv"

setup: $(STAMP) system-deps

# The environment takes about 7 GB (PyPI's torch brings its CUDA libraries even
# on CPU-only machines); say so before pip runs out of room half-way.
NEED_GB ?= 9

$(STAMP): pyproject.toml constraints.txt
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4/1048576)}'); \
	  echo "setting up $(VENV): about 7 GB of packages, $${free} GB free here"; \
	  [ "$$free" -ge $(NEED_GB) ] || echo "WARNING: under $(NEED_GB) GB free; the install may stop with 'No space left on device' (set PIP_NO_CACHE_DIR=1 to save the download cache)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=23" "setuptools<81" wheel
	$(PY) -m pip install -c constraints.txt -e '.[all,test]'
	# Basic Pitch's model ships in its wheel; --no-deps skips its TensorFlow pin (pyproject.toml, models)
	$(PY) -m pip install -c constraints.txt --no-deps basic-pitch
	touch $@

# FFmpeg's shared libraries are what torchcodec (torchaudio.load/save, used by
# stable-audio-tools) and our m4a/aac decoding need; fluidsynth and the General MIDI
# soundfont render the realistic test songs whose tempo, meter, key and chords are known
# (tests/test_musical_facts.py, tools/make_eval_corpus.py); headless Chromium checks that the
# dataset report loads in a real browser (tests/report/).  Installed with apt-get when we may;
# otherwise say what is missing.
SOUNDFONT := /usr/share/sounds/sf2/FluidR3_GM.sf2

system-deps:
	@missing=""; \
	  command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	  command -v fluidsynth >/dev/null 2>&1 || missing="$$missing fluidsynth"; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  test -f $(SOUNDFONT) || missing="$$missing fluid-soundfont-gm"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing$$missing (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; \
	    else \
	      echo "WARNING: not installed:$$missing; install them (e.g. sudo apt-get install$$missing): ffmpeg decodes m4a/aac and lets stable-audio-tools read audio, fluidsynth + fluid-soundfont-gm render the realistic test songs, chromium opens the report (their tests are skipped without them)"; \
	    fi; \
	  fi

# The demo's stand-in Stable Audio model: real architecture, random weights (no downloads),
# trained on windows as long as the demo's crops (524288 samples, conf/dataset/demo.yaml).
DEMO_MODELS = $${SAT_MIR_CACHE:-$$HOME/.cache/sat-mir}/demo/tiny-sat-model

demo: setup
	$(PY) -m sat_mir.extract +dataset=demo crops=div4
	$(PY) tools/make_tiny_sat_model.py "$(DEMO_MODELS)" --sample-size 524288 >/dev/null
	$(PY) -m sat_mir.build +dataset=demo
	$(PY) -m sat_mir.build.preview +dataset=demo n=5
	$(PY) -m sat_mir.report +dataset=demo

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: setup
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc
