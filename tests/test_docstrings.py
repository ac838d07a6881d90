"""The examples in the package's docstrings run and give what they show (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import loss_landscape_anim

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(loss_landscape_anim.__path__, "loss_landscape_anim.")
    if m.name != "loss_landscape_anim.__main__"
)


def with_examples() -> list[str]:
    names = ["loss_landscape_anim"]
    for name in MODULES:
        finder = doctest.DocTestFinder()
        if any(t.examples for t in finder.find(importlib.import_module(name))):
            names.append(name)
    return names


@pytest.mark.parametrize("name", with_examples())
def test_docstring_examples(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0


def test_the_package_docstring_has_examples() -> None:
    assert "loss_landscape_anim" in with_examples()
