"""GitHub Actions glue for the experiment repo's workflows (``explorer ci``).

Every piece runs without GitHub: the event payload is a file (``$GITHUB_EVENT_PATH`` or the
recorded ones in ``.github/events/``), step outputs and the job summary are files
(``$GITHUB_OUTPUT``, ``$GITHUB_STEP_SUMMARY``), and the REST API is a URL (``$GITHUB_API_URL``),
so the same commands run under act, on a laptop and in the tests.

- ``event``: what triggered the run (pull request, push, manual) and whether its code is trusted.
- ``git`` / ``changes``: which committed search spaces a change touched (the search matrix).
- ``outputs``: step outputs and the job summary.
- ``results`` / ``mermaid`` / ``dvcdiff`` / ``report``: the pull-request report in markdown.
- ``github`` / ``comment``: one sticky pull-request comment through the REST API.
"""
