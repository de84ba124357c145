# Two entry points for people: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# The first interpreter that really is 3.12 (a pyenv shim for an inactive version is not).
PYTHON312 ?= $(shell for c in $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) python3.12; do \
  $$c -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$c; break; }; done)
VENV := .venv
VENV312 := .venv-core221
BIN := $(CURDIR)/$(VENV)/bin
BUILD := $(CURDIR)/build
# ansible-test only works inside ansible_collections/<namespace>/<name>: test a copy there.
COLLECTION_ROOT := $(BUILD)/ansible_collections
COLLECTION_COPY := $(COLLECTION_ROOT)/spotmax/maxgroup
# A project-owned HOME keeps ansible-test's caches and virtualenvs (and the offline pip
# bootstrap) out of the user's home.
TEST_HOME := $(BUILD)/home
SITE := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("purelib").split("/")[-2])')
BUNDLED := $(CURDIR)/$(VENV)/lib/$(SITE)/site-packages/ansible_collections
WORLD := $(BIN)/python -m spotmax_world
# Deferred (=): the virtualenv exists only once a recipe needs it.
PYVER = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export PYTHONPATH := $(CURDIR)/tests/world
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/collections
export ANSIBLE_NOCOLOR := 1
# Only the local world: no instance metadata look-ups, no real AWS profile.
export AWS_EC2_METADATA_DISABLED := true
export AWS_CONFIG_FILE := /dev/null
export AWS_SHARED_CREDENTIALS_FILE := /dev/null

.PHONY: help demo test bench bench-smoke venv copy lint sanity sanity-core221 units units-core221 world-tests eda-tests awx-tests integration molecule e2e changelog docs build install clean

help:
	@echo "make demo   - run the collection against the local world (AWS, Kubernetes, Consul test doubles)"
	@echo "make test   - run every check: lint, docs site, sanity, unit, world, EDA, AWX, integration, molecule, end-to-end, benchmark smoke"

$(VENV)/.installed: requirements-test.txt requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	touch $@

venv: $(VENV)/.installed

build: venv
	rm -f $(BUILD)/spotmax-maxgroup-*.tar.gz
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD) . >/dev/null
	@ls $(BUILD)/spotmax-maxgroup-*.tar.gz

install: build
	$(BIN)/ansible-galaxy collection install --force --offline --no-deps -p $(BUILD)/collections $(BUILD)/spotmax-maxgroup-*.tar.gz >/dev/null
	@echo "installed spotmax.maxgroup into $(BUILD)/collections"

# The demo playbook against a fresh world, then a storm of 20 Spot interruptions handled by the rulebook in
# another (demo/storm.py runs its world in-process to time each step): build/demo/timeline.png, rulebook.log.
demo: install
	cd demo && $(WORLD) exec -- $(BIN)/ansible-playbook demo.yml
	$(BIN)/python demo/storm.py --size 20 --collections $(BUILD)/collections --output-dir $(BUILD)/demo

# Storms of 10, 100 and 500 Spot warnings through the world, against the naive baseline (not a timed test):
# build/bench/results.json and build/bench/timeline.png. docs/performance.md records the figures.
bench: venv
	$(BIN)/python tests/bench/run.py --output-dir $(BUILD)/bench

# The benchmark's smallest storm (N=10, no baseline) as a smoke test: fails when the pipeline does not
# handle every instance within the run's bound. No speed target is checked here.
bench-smoke: venv
	$(BIN)/python tests/bench/run.py --sizes 10 --skip-baseline --output-dir $(BUILD)/bench-smoke

# --- tests --------------------------------------------------------------------------------
test: lint changelog docs sanity units world-tests eda-tests awx-tests integration molecule e2e bench-smoke sanity-core221 units-core221
	@echo "make test: all checks passed"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy plugins/module_utils tests/world/spotmax_world extensions/eda/plugins/event_source
	$(BIN)/yamllint -s .
	# ansible-lint resolves this collection from the source tree through a link.
	mkdir -p $(BUILD)/source/ansible_collections/spotmax && ln -sfn $(CURDIR) $(BUILD)/source/ansible_collections/spotmax/maxgroup
	ANSIBLE_COLLECTIONS_PATH=$(BUILD)/source $(BIN)/ansible-lint --profile production

changelog: venv
	$(BIN)/antsibull-changelog lint

# The collection's docs site (plugins, roles, the user guide in docs/docsite/) rendered by antsibull-docs and Sphinx,
# offline: build/docs-site/build/html/index.html. A doc that does not render, breaks the schema or references
# something that does not exist fails the lint or the build (Sphinx -W).
DOCS_SITE := $(BUILD)/docs-site
docs: venv
	# antsibull-docs finds this collection where ansible-lint does: the source tree linked under build/source.
	mkdir -p $(BUILD)/source/ansible_collections/spotmax && ln -sfn $(CURDIR) $(BUILD)/source/ansible_collections/spotmax/maxgroup
	# The lint copies amazon.aws from the virtualenv's ansible package; the git ceiling keeps it from being taken
	# for ignored files of a checkout around the virtualenv (git would list none of them).
	ANSIBLE_COLLECTIONS_PATH=$(BUILD)/source GIT_CEILING_DIRECTORIES=$(BUNDLED) $(BIN)/antsibull-docs lint-collection-docs \
	  --plugin-docs --validate-collection-refs=self --check-extra-docs-refs $(BUILD)/source/ansible_collections/spotmax/maxgroup
	rm -rf $(DOCS_SITE) && mkdir -m 0755 $(DOCS_SITE)
	ANSIBLE_COLLECTIONS_PATH=$(BUILD)/source $(BIN)/antsibull-docs sphinx-init --use-current --fail-on-error \
	  --dest-dir $(DOCS_SITE) --index-rst-source docs/site/index.rst --project spotmax.maxgroup --title spotmax.maxgroup \
	  --copyright "Contributors to the spotmax.maxgroup project" spotmax.maxgroup >/dev/null
	# Offline: docs/site/spotmax_offline_refs.py replaces the intersphinx inventories of docs.ansible.com.
	echo 'extensions.append("spotmax_offline_refs")' >> $(DOCS_SITE)/conf.py
	# The generated build script: antsibull-docs collection --fail-on-error, then sphinx-build -W --keep-going.
	ANSIBLE_COLLECTIONS_PATH=$(BUILD)/source PYTHONPATH=$(CURDIR)/docs/site $(DOCS_SITE)/build.sh >$(DOCS_SITE)/build.log 2>&1 \
	  || { grep -E 'WARNING|ERROR' $(DOCS_SITE)/build.log || tail -n 40 $(DOCS_SITE)/build.log; echo "make docs: the docs site did not build (log: $(DOCS_SITE)/build.log)"; exit 1; }
	@echo "docs site: $(DOCS_SITE)/build/html/index.html"

# A clean copy of the tracked tree where ansible-test wants it, with the bundled dependencies.
copy: venv
	rm -rf $(COLLECTION_COPY) && mkdir -p $(COLLECTION_COPY) $(COLLECTION_ROOT)/amazon
	git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C $(COLLECTION_COPY)
	# Its own repository, so ansible-test sees the files (the outer checkout ignores build/).
	cd $(COLLECTION_COPY) && git init -q && git add -A
	ln -sfn $(BUNDLED)/amazon/aws $(COLLECTION_ROOT)/amazon/aws
	$(BIN)/python tests/tooling/install_pip_bootstrap.py $(TEST_HOME)

sanity: copy
	cd $(COLLECTION_COPY) && HOME=$(TEST_HOME) $(BIN)/ansible-test sanity --venv --python $(PYVER) --color no

units: copy
	cd $(COLLECTION_COPY) && HOME=$(TEST_HOME) $(BIN)/ansible-test units --venv --python $(PYVER) --color no

world-tests: venv
	$(BIN)/python -m pytest tests/world -q -n 2

# The event source against the world's SQS (it lives outside plugins/, so ansible-test units do not see it).
eda-tests: venv
	$(BIN)/python -m pytest tests/eda -q -n 2

# The EE and DE definitions (ansible-builder create, offline) and awx_configure's job templates and surveys.
awx-tests: venv
	$(BIN)/python -m pytest tests/awx -q

integration: copy
	cd $(COLLECTION_COPY) && $(WORLD) exec --integration-config tests/integration/integration_config.yml -- \
	  $(BIN)/ansible-test integration --python $(PYVER) --color no

molecule: install
	cd extensions && $(WORLD) exec -- $(BIN)/molecule test --all

# The e2e fixtures build and install the tarball themselves.
e2e: venv
	$(BIN)/python -m pytest tests/e2e -q

# ansible-core 2.21 needs Python >= 3.12: run its sanity + unit legs where such a Python exists.
$(VENV312)/.installed: requirements-test-core221.txt
	test -x $(VENV312)/bin/python || $(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet --upgrade pip
	$(VENV312)/bin/python -m pip install --quiet -r requirements-test-core221.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	touch $@

sanity-core221 units-core221: copy
	@if [ -z "$(PYTHON312)" ]; then echo "NOTICE: no Python 3.12 on this machine: skipping the ansible-core 2.21 $@ leg"; exit 0; fi; \
	echo "$@: ansible-core 2.21 on $(PYTHON312)"; \
	$(MAKE) --no-print-directory $(VENV312)/.installed; \
	$(VENV312)/bin/python tests/tooling/install_pip_bootstrap.py $(TEST_HOME); \
	cd $(COLLECTION_COPY) && HOME=$(TEST_HOME) $(CURDIR)/$(VENV312)/bin/ansible-test $(patsubst %-core221,%,$@) --venv --python 3.12 --color no

clean:
	rm -rf $(BUILD) tests/output
