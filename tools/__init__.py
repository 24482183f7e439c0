"""What only builds this repository, outside the importable library: run from the checkout as `python -m tools.<name>`.

`notebook_tools` (execute, sync and time the lessons; release runs), `readme_blocks` (the README's
generated blocks), `timing` and `release` (their parts), `machine_load` (is the machine idle enough
to time?), `make_module_map` and `module_graph` (the module map, the command list and the house check).
"""
