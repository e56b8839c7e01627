"""Property-based fuzzing of the whole OpenAPI schema, in process (ASGI): no request may cause a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from rakuten_mlops.serving.app import create_app
from rakuten_mlops.serving.security import create_token

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzz_app(make_settings, kit):
    """A dedicated app (fuzzed user creation must not touch the shared one) and an admin token.

    Schemathesis runs the app's lifespan itself, so the token is minted with the app's own
    signing configuration rather than through a second, concurrent lifespan.
    """
    s = make_settings(login_max_failures=10_000)
    kit.add_user(s, "fuzz-admin", "admin")
    app = create_app(s)
    token = create_token(app.state.serving.tokens, "fuzz-admin", ["admin", "predictor"])
    return app, kit.bearer(token)


def test_no_request_causes_a_server_error(fuzz_app):
    app, admin = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case, label: str = operation.label) -> None:
            for headers in (admin, None):
                try:  # an exception escaping the app is a server error too
                    response = case.call(headers=headers)
                    case.validate_response(response, checks=[not_a_server_error])
                except Exception as exc:
                    failures.append(f"{label}: {exc.__class__.__name__}: {exc}"[:2000])
                    raise

        try:
            fuzz()
        except Exception:
            continue
    assert not failures, "\n\n".join(failures)
