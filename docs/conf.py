"""Sphinx configuration of the sklearn-dropnet documentation.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
(warnings are errors, as in CI). ``-D plot_gallery=0`` skips running the
gallery examples (the test suite runs them separately).
"""

import os
import re
import warnings
from datetime import date

import sklearn_dropnet

# The gallery runs examples without a display.
os.environ.setdefault("MPLBACKEND", "Agg")

project = "sklearn-dropnet"
author = "the sklearn-dropnet developers"
copyright = f"{date.today().year}, {author}"
release = sklearn_dropnet.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**/*.zip"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Docstring checks run on every documented object; a failure is a warning,
# hence an error with -W.
numpydoc_validation_checks = {
    "GL06",  # unknown section
    "GL07",  # sections in the wrong order
    "PR01",  # a parameter is not documented
    "PR02",  # a documented parameter does not exist
    "PR03",  # parameters documented in the wrong order
    "PR10",  # missing space before the colon in "name : type"
}
numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\.forward$",  # torch modules' forward(x): documented by their class
    r"\.set_params$",  # inherited from scikit-learn
    r"\.get_params$",
    r"\.set_.*_request$",
}

# -- sphinx-gallery ---------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("sklearn_dropnet",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sklearn_dropnet": None},
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
}

# Matplotlib's Agg backend cannot show figures: the gallery captures them.
warnings.filterwarnings(
    "ignore", category=UserWarning, message="FigureCanvasAgg is non-interactive"
)

# -- myst (the changelog is Markdown) ---------------------------------------------
myst_heading_anchors = 3

# -- HTML ---------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-dropnet {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"getting_started": [], "changelog": []}
html_show_sourcelink = True


# -- the command line's --help, included by user_guide/cli.rst ---------------------
def _write_cli_help(app):
    """Write ``sklearn-dropnet COMMAND --help`` to ``generated/cli/COMMAND.txt``."""
    from pathlib import Path

    from sklearn_dropnet.cli import build_parser

    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
    parser = build_parser()
    folder = Path(app.srcdir) / "generated" / "cli"
    folder.mkdir(parents=True, exist_ok=True)
    commands = parser._subparsers._group_actions[0].choices
    for name, subparser in commands.items():
        text = subparser.format_help()
        path = folder / f"{name}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


# -- docstrings inherited from scikit-learn -------------------------------------------
# ``score``, ``get_params`` ... come with scikit-learn's docstrings, whose
# :ref: and :term: targets live in scikit-learn's own documentation; without
# intersphinx (the build stays offline) they would be broken references.
_SKLEARN_ROLE = re.compile(r":(?:ref|term):`(?:([^`<]+?)\s*<([^>`]+)>|([^`<]+))`")


def _unlink_sklearn_references(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if module == "sklearn" or module.startswith("sklearn."):
        lines[:] = [
            _SKLEARN_ROLE.sub(lambda m: m.group(1) or m.group(3) or m.group(2), line)
            for line in lines
        ]


def setup(app):
    app.connect("builder-inited", _write_cli_help)
    app.connect("autodoc-process-docstring", _unlink_sklearn_references)
