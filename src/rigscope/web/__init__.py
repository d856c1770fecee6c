"""The web page and REST API (`rigscope serve`)."""
