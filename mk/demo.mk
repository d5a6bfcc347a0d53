# `make demo`: the main job, the seeds' workflow on SQLite — an orders application in Python,
# Node and C whose SQLite triggers emit JSON events through hark's extension, one writer killed
# mid-way, Python and Node listeners printing the events, and a check that they received exactly
# the committed history (examples/orders_demo.py). `make demo-languages` is the plain
# LISTEN/NOTIFY demo: a C notifier, a Python, a Ruby and a Node listener on one queue directory,
# with a rolled-back transaction whose notification never appears (examples/demo.py).
DEMO_TARGET := demo-orders

.PHONY: demo-languages
demo-languages: c-examples python-wheel build-node ruby-lib
	python3 examples/demo.py
# demo-orders is in mk/sqlite.mk, beside what it builds.
