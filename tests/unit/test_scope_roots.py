"""The subtrees of a supervisor of several units: each once, none inside another, and a
path is inside iff it lies below one of them (whole segments)."""

from __future__ import annotations

from server.scope import top_roots, within
from server.store.rows import root_paths


def test_top_roots_drop_the_subtrees_inside_another() -> None:
    paths = ["/d/s1/c1/", "/d/s2/", "/d/s1/c1/", "/d/s2/c9/", "/d/s10/"]
    assert top_roots(paths) == ("/d/s1/c1/", "/d/s2/", "/d/s10/")
    assert top_roots(["/d/s1/c1/", "/d/"]) == ("/d/",)
    assert top_roots([]) == ()


def test_within_several_roots_by_whole_segments() -> None:
    roots = ("/d/s1/c1/", "/d/s2/")
    assert within("/d/s1/c1/g/", roots) and within("/d/s2/", roots)
    assert not within("/d/s1/", roots)  # between them
    assert not within("/d/s1/c10/", roots)  # a prefix as a string, not as a path
    assert not within("/d/s1/c1/", ())
    assert within("/d/s2/c/", "/d/s2/")  # one root as before


def test_a_single_path_is_one_root() -> None:
    assert root_paths("/d/") == ("/d/",)
    assert root_paths(["/a/", "/b/"]) == ("/a/", "/b/")
