"""The reference's own model test-suite (timm 1.0.31 `tests/test_models.py`), run against visionzoo.

Its test functions are compiled into this module from the cached, shimmed source (see `source.py`), so
pytest collects them here; `conftest.py` keeps the items that run one of our architectures and deselects the
out-of-scope ones with their reason.
"""

from tests.reference_suite.source import reference_test_file, shimmed_source

_path = reference_test_file()
exec(compile(shimmed_source(_path), str(_path), "exec"), globals())  # noqa: S102
