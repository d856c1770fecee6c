"""Quality evaluation: suites of tasks, scoring, and a sandbox for model-written code."""
