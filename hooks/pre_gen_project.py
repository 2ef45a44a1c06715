"""Check every option before cookiecutter writes a file.

The options were already checked while cookiecutter resolved them (``local_extensions.py``); this
second check covers ``--replay``, which skips that step. A bad value ends the bake with one line on
stderr and exit code 1; cookiecutter then removes the half-made project folder.
"""

import json
import sys

# The options as JSON text in a Python string literal (JSON's string escapes mean the same in Python).
OPTIONS = json.loads({{ cookiecutter | tojson | tojson }})
sys.path.insert(0, {{ template_hooks_dir | tojson }})

import options  # noqa: E402  (hooks/options.py, found through the line above)

try:
    options.validate(OPTIONS)
except options.OptionError as error:
    sys.exit(str(error))
