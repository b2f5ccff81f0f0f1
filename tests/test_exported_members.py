"""The public surface: everything in __all__ exists, is public, and nothing else leaks."""

import httpx_resilience


def test_all_names_exist_and_claim_the_public_module() -> None:
    """Every name in __all__ resolves, and public classes report the top-level module."""
    for name in httpx_resilience.__all__:
        obj = getattr(httpx_resilience, name)
        if isinstance(obj, type):
            assert obj.__module__ == "httpx_resilience", name


def test_all_lists_every_public_attribute() -> None:
    """No public attribute of the package is missing from __all__."""
    public = {
        name
        for name in dir(httpx_resilience)
        if not name.startswith("_")
        and not isinstance(getattr(httpx_resilience, name), type(httpx_resilience))
    }
    assert public == set(httpx_resilience.__all__) - {"__version__"}


def test_version_is_a_string() -> None:
    """`__version__` is exported as a non-empty version string."""
    assert isinstance(httpx_resilience.__version__, str)
    assert httpx_resilience.__version__[0].isdigit()
