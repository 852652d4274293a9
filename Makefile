# mailseal: `make demo` runs the main job, `make test` the whole suite.
# Both install what is missing first: Debian packages (as root, or with
# sudo), a virtualenv in .venv and the project in it (pip install -e .[test];
# the "compat" editable mode is a plain path entry, which keeps each
# program's start-up about 10 ms shorter than setuptools' import hook; the
# library is byte-compiled as pip does for an installed package, since a
# filter that compiles its modules at every start pays 20 ms for it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# peers and clients the tests drive, the headers notmuch2 and python-ldap build
# against, the LDAP server the directory tests start
APT_PACKAGES := openssl gpgsm gpg-agent libnss3-tools notmuch libnotmuch-dev \
                tmux neomutt mutt aerc time python3-venv ca-certificates \
                libldap2-dev libsasl2-dev slapd ldap-utils gcc python3-dev

.PHONY: all deps venv test demo bench fuzz clean

all: venv

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BIN)/.installed: setup.cfg pyproject.toml $(wildcard filters/* hooks/* bin/*)
	$(MAKE) deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --config-settings editable_mode=compat -e '.[test]'
	$(BIN)/python -m compileall -q mailseal mailseal_cli >/dev/null
	touch $@

venv: $(BIN)/.installed

test: deps venv
	$(BIN)/python -m pytest

demo: deps venv
	PATH="$(CURDIR)/$(BIN):$$PATH" sh examples/demo.sh

# mailseal beside openssl cms: filter latency, bulk import, a large message
bench: deps venv
	$(BIN)/python -m compileall -q mailseal mailseal_cli >/dev/null
	$(BIN)/python bench/benchmark.py --json bench/results.json

# the MIME and CMS parsers and each program's entry point under atheris: 8 x 20,000 inputs
fuzz: deps venv
	$(BIN)/pip install -q -e '.[fuzz]'
	$(BIN)/python fuzz/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
