"""The one-call API's export= and tensorboard=: checked before any work."""

from __future__ import annotations

import pytest

from loss_landscape_anim import loss_landscape_anim


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"export": "grid.txt"}, ValueError, r"export files ending in one of \.vts, .* \.h5"),
        ({"export": ["ok.vtp", "folder/"]}, ValueError, "Expected export to be a file path"),
        ({"tensorboard": "a_file"}, ValueError, "Expected tensorboard to be a folder"),
    ],
)
def test_bad_exports_fail_before_training(tmp_path, monkeypatch, options, error, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    (tmp_path / "folder").mkdir()
    with pytest.raises(error, match=match):
        loss_landscape_anim(n_epochs=1, model_dirpath=str(tmp_path / "ck"), **options)
    assert not (tmp_path / "ck").exists() and not (tmp_path / "sample.gif").exists()


def test_a_missing_package_fails_before_training(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyvista", None)
    with pytest.raises(ImportError, match=r"pip install 'loss-landscape-anim\[vtk\]'"):
        loss_landscape_anim(n_epochs=1, model_dirpath=str(tmp_path / "ck"), export="s.vts")
    assert not (tmp_path / "ck").exists()
