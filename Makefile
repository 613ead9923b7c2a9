# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   create .venv, install jaxseq, run the default palindrome sweep -> results/demo
#   make test   create .venv, install jaxseq with its test extra, run the test suite
# and, for docs/textgen.md (about 30 minutes on a 2-core CPU):
#   make textgen   train configs/textgen.py:grimm_long on Grimms' Fairy Tales (resumable), evaluate it,
#                  write temperature samples and a prompt completion to $(TEXTGEN)/generated.txt
#   make textgen-data-size   after make textgen: train grimm_long on the last 25% and 50% of the
#                  training split (about 55 minutes), evaluate, and draw validation loss against
#                  training characters with an n-gram baseline -> results/textgen/data_size.{json,png}
# Scripts run by hand write to a fresh runs/<script>/<YYYYmmdd-HHMMSS>/ unless --out names a
# directory; these targets publish under results/ by naming it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= results/demo
# test processes: most of the suite's time is single-threaded compilation, so two processes use a
# 2-core machine better than one. Three were not clearly faster: at e74ae45 on the 2-core CPU,
# 2026-12-07, one run each, both beside an atlas run at nice 19: 928.6 s at -n 3 (the suite kept the
# CPU 181 % busy) and 1006.9 s at -n 2, while -n 2 ran in 903-1007 s over the day's commits. TEST_WORKERS=0 runs the suite in one process
TEST_WORKERS ?= 2
TEXTGEN ?= results/textgen/grimm_long
GENERATE := $(PY) scripts/generate.py --run=$(TEXTGEN)

.PHONY: demo test textgen textgen-data-size venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) scripts/run_palindrome.py --config=configs/palindrome.py --out=$(OUT)

textgen: venv
	$(PY) scripts/train_textgen.py --config=configs/textgen.py:grimm_long --out=$(TEXTGEN) --resume
	$(PY) scripts/eval_textgen.py --run=$(TEXTGEN)
	{ for t in 0.5 1.0 2.0; do $(GENERATE) --temperature=$$t --num_samples=2 --length=150 || exit 1; done; \
	  $(GENERATE) --prompt="Sleeping beauty is" --length=300 --temperature=0 && \
	  $(GENERATE) --prompt="Sleeping beauty is" --length=300 --temperature=0.5; } > $(TEXTGEN)/generated.txt

textgen-data-size: venv
	for f in 0.25 0.5; do \
	  $(PY) scripts/train_textgen.py --config=configs/textgen.py:grimm_long --config.data.train_fraction=$$f \
	    --out=results/textgen/grimm_long_train$$f --resume && \
	  $(PY) scripts/eval_textgen.py --run=results/textgen/grimm_long_train$$f || exit 1; done
	$(PY) scripts/textgen_data_size.py --out=results/textgen/data_size

test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
