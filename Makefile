# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   create .venv, install jaxseq, run the default palindrome sweep -> results/
#   make test   create .venv, install jaxseq with its test extra, run the test suite
# and, for the text-generation section of the README (about 30 minutes on a 2-core CPU):
#   make textgen   train configs/textgen.py:grimm_long on Grimms' Fairy Tales (resumable), evaluate it,
#                  write temperature samples and a prompt completion to $(TEXTGEN)/generated.txt
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= results/demo
TEXTGEN ?= results/textgen/grimm_long
GENERATE := $(PY) scripts/generate.py --run=$(TEXTGEN)

.PHONY: demo test textgen venv clean

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

test: venv
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
