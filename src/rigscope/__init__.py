"""rigscope: will this LLM fit on this hardware, and how fast will it run?

Entry points live in rigscope.api; the command line in rigscope.cli.
"""

__version__ = "0.1.0"
