# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   create .venv, install jaxseq, run the default palindrome sweep -> results/
#   make test   create .venv, install jaxseq with its test extra, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= results/demo

.PHONY: demo test venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) scripts/run_palindrome.py --config=configs/palindrome.py --out=$(OUT)

test: venv
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
