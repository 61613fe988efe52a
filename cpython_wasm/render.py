"""Rendering: Jinja2 templates under containers/ become Dockerfiles.

StrictUndefined makes a value the template needs but was not given an error,
never an empty string silently baked into an image.
"""

import jinja2

from .paths import CONTAINERS_DIR

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(CONTAINERS_DIR),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # Dockerfiles, not HTML
)


def render(template: str, **values) -> str:
    return _environment.get_template(template).render(**values)
