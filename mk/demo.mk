# `make demo`: the main job — a C notifier, a Python, a Ruby and a Node listener on one queue
# directory, with a rolled-back transaction whose notification never appears (examples/demo.py).
DEMO_TARGET := demo-languages

.PHONY: demo-languages
demo-languages: c-examples python-wheel build-node ruby-lib
	python3 examples/demo.py
