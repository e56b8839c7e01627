"""The one client of the project's prediction API (httpx): log in for a token, then call the routes.

The UI and the Airflow tasks go through it; the UI also reads the model registry, monitoring and
the training data summaries through the API's read-only routes (it has no database, registry or
home folder of its own). Every call returns plain data or raises `ApiError` with a message a
person can act on (log in again, use a smaller image, start the API, ...). The load generator
(`rakuten_mlops.simulation.loadgen`) takes its token from here but sends its pre-encoded bodies
on its own keep-alive connections, so that it measures the server.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import httpx

from rakuten_mlops.config import Settings
from rakuten_mlops.errors import RakutenError

DEFAULT_TIMEOUT_S = 30.0


COMPARE_TIMEOUT_S = 600.0  # the API scores two models on a gold set the first time a pair is asked


class ApiError(RakutenError, RuntimeError):
    """The API refused a call or did not answer; `status` is None when it could not be reached."""

    def __init__(self, status: int | None, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class UserSession:
    """Who is logged in: the token the API issued, when it expires, and what the API lets them do."""

    username: str
    token: str
    expires_at: float
    is_admin: bool

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires_at - 5


def configured_api_url(settings: Settings) -> str:
    """RAKUTEN_API_URL, else the address `rakuten-mlops serve` listens on."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    host = "127.0.0.1" if settings.serve_host in ("0.0.0.0", "::", "") else settings.serve_host
    return f"http://{host}:{settings.serve_port}"


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return str(body)[:300]


def explain(status: int, detail: str, doing: str) -> str:
    """What an error status means for the person using the UI, followed by the API's own message."""
    hints = {
        400: "the API rejected the request",
        401: "the API did not accept your session (expired or invalid token): log in again",
        403: "your account may not do this",
        404: "not found",
        413: "too large for the API's limits (use a smaller image or fewer rows)",
        415: "the API does not accept this content type",
        422: "the API rejected the input",
        429: "too many attempts; wait before retrying",
        503: "the API is not ready (no model loaded yet, or its database is down); retry in a few seconds",
    }
    hint = hints.get(status, "the API failed" if status >= 500 else "the API refused the request")
    return f"{doing} failed ({status}): {hint}. API says: {detail}"


class ApiClient:
    """Calls the v1 API at `base_url`; a token from `login` goes with every other call."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, doing: str, token: str | None = None, **kwargs: Any) -> Any:
        return self._send_raw(method, path, doing, token, **kwargs).json()

    def _send_raw(
        self, method: str, path: str, doing: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                None,
                f"{doing} failed: the API at {self.base_url} did not answer in time "
                f"({exc.__class__.__name__})",
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                None,
                f"{doing} failed: the API at {self.base_url} does not answer ({exc.__class__.__name__}). "
                "Start it with `rakuten-mlops serve`, or set RAKUTEN_API_URL to where it runs.",
            ) from None
        if response.status_code >= 400:
            detail = _detail(response)
            raise ApiError(response.status_code, explain(response.status_code, detail, doing), detail)
        return response

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ auth
    def token(self, username: str, password: str) -> tuple[str, float]:
        """A bearer token for these credentials (``POST /v1/auth/token``) and when it expires."""
        credentials = {"username": username, "password": password}
        try:
            body = self._send("POST", "/v1/auth/token", "Logging in", data=credentials)
        except ApiError as exc:
            if exc.status == 401:  # not a session problem: the credentials themselves were refused
                message = "Logging in failed (401): wrong username or password."
                raise ApiError(401, message, exc.detail) from None
            raise
        return str(body["access_token"]), time.time() + float(body.get("expires_in", 3600))

    def login(self, username: str, password: str) -> UserSession:
        """Exchange credentials for a token, then ask the API whether this user is an admin."""
        token, expires_at = self.token(username, password)
        return UserSession(username, token, expires_at, self.is_admin(token))

    def is_admin(self, token: str) -> bool:
        """True when the API says this token's account has the admin role."""
        me = self._send("GET", "/v1/auth/me", "Checking your role", token)
        return "admin" in me.get("roles", [])

    # ------------------------------------------------------------------ model
    def model(self, token: str) -> dict[str, Any]:
        """What the API serves (name, version, ready, last error)."""
        return dict(self._send("GET", "/v1/model", "Reading the served model", token))

    def promote(self, token: str, version: str, reason: str = "") -> dict[str, Any]:
        """Make `version` champion; the API checks the admin role, reloads and records why (admin)."""
        body = {"version": str(version), "reason": reason}
        return dict(self._send("POST", "/v1/model/promote", "Promoting the version", token, json=body))

    def rollback(self, token: str, reason: str = "") -> dict[str, Any]:
        """Give champion back to the version it replaced; the API checks the role and reloads (admin)."""
        body = {"reason": reason}
        return dict(self._send("POST", "/v1/model/rollback", "Rolling back the champion", token, json=body))

    def limits(self, token: str) -> dict[str, Any]:
        """The API's request limits (image bytes, batch size, ...) and the review queue's threshold."""
        return dict(self._send("GET", "/v1/limits", "Reading the API's limits", token))

    def reload_model(self, token: str) -> dict[str, Any]:
        """Ask the API to load the current champion now (admin)."""
        return dict(self._send("POST", "/v1/model/reload", "Reloading the API's model", token))

    # ------------------------------------------------------------------ predictions
    def predict(
        self,
        token: str,
        designation: str,
        description: str = "",
        image: bytes | None = None,
        image_name: str = "image",
        image_type: str = "application/octet-stream",
        explain: bool = False,
    ) -> dict[str, Any]:
        """One listing; the image (if any) is uploaded as a multipart file part.

        `explain` asks for the words and modality shares behind the answer (`explanation`).
        """
        fields: dict[str, Any] = {"designation": designation, "description": description}
        if image is None:
            body = {**fields, "explain": True} if explain else fields
            return dict(self._send("POST", "/v1/predict", "Prediction", token, json=body))
        if explain:
            fields["explain"] = "true"
        files = {"image": (image_name, image, image_type)}
        return dict(self._send("POST", "/v1/predict", "Prediction", token, data=fields, files=files))

    def predict_batch(self, token: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Several listings (`designation`, `description`, optional `image` bytes) in one request."""
        body = []
        for item in items:
            row = {"designation": item["designation"], "description": item.get("description") or ""}
            if item.get("image") is not None:
                row["image_base64"] = base64.b64encode(item["image"]).decode("ascii")
            body.append(row)
        out = self._send("POST", "/v1/predict/batch", "Batch prediction", token, json={"items": body})
        return list(out["predictions"])

    def feedback(self, token: str, prediction_id: str, true_code: int) -> dict[str, Any]:
        """Report the true product type of a served prediction."""
        payload = {"prediction_id": prediction_id, "true_code": int(true_code)}
        return dict(self._send("POST", "/v1/feedback", "Sending feedback", token, json=payload))

    # ------------------------------------------------------------------ registry (read-only)
    def model_versions(self, token: str, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Registered versions, newest first, with metrics, tags and the champion version."""
        params = {"limit": limit, "offset": offset}
        return dict(
            self._send("GET", "/v1/models/versions", "Reading the model registry", token, params=params)
        )

    def model_version(self, token: str, version: str) -> dict[str, Any]:
        """One version with its per-class F1 and whether a confusion matrix was logged."""
        return dict(self._send("GET", f"/v1/models/versions/{version}", f"Reading version {version}", token))

    def model_card(self, token: str, version: str, fmt: str = "markdown") -> str:
        """A version's model card, as Markdown or as a self-contained HTML page."""
        path = f"/v1/models/versions/{version}/card"
        return self._send_raw("GET", path, "Reading the model card", token, params={"format": fmt}).text

    def model_evaluation(self, token: str, version: str) -> dict[str, Any]:
        """Per-class test scores with row counts, confusion counts, the gate's same-gold-rows comparison."""
        path = f"/v1/models/versions/{version}/evaluation"
        return dict(self._send("GET", path, f"Reading version {version}'s evaluation", token))

    def compare_with_champion(self, token: str, version: str) -> dict[str, Any]:
        """`version` and the current champion scored now on `version`'s gold rows (the gate's comparison)."""
        path = f"/v1/models/versions/{version}/compare"
        doing = f"Comparing version {version} with the champion"
        return dict(self._send("GET", path, doing, token, timeout=COMPARE_TIMEOUT_S))

    def promotion_history(self, token: str, limit: int = 50) -> dict[str, Any]:
        """Champion changes, newest first: who, when, from → to, why."""
        params = {"limit": limit}
        return dict(
            self._send("GET", "/v1/models/history", "Reading the promotion history", token, params=params)
        )

    def confusion_png(self, token: str, version: str) -> bytes:
        """The confusion-matrix PNG logged with a version's run."""
        path = f"/v1/models/versions/{version}/confusion.png"
        return self._send_raw("GET", path, "Reading the confusion matrix", token).content

    # ------------------------------------------------------------------ monitoring (admin)
    def drift_reports(self, token: str, limit: int = 50) -> dict[str, Any]:
        """Drift report summaries, newest first (``total`` and ``reports``)."""
        params = {"limit": limit}
        return dict(self._send("GET", "/v1/monitoring/drift", "Reading drift reports", token, params=params))

    def drift_report_html(self, token: str, report_id: str) -> str:
        """The full Evidently HTML of one drift report."""
        path = f"/v1/monitoring/drift/{report_id}/report.html"
        return self._send_raw("GET", path, "Reading the Evidently report", token).text

    def live_quality(self, token: str, days: float = 30.0) -> dict[str, Any]:
        """Live F1 per version and predicted classes over time, and the last live computation."""
        params = {"days": days}
        return dict(self._send("GET", "/v1/monitoring/live", "Reading live quality", token, params=params))

    def retrain_decisions(self, token: str, limit: int = 20) -> dict[str, Any]:
        """The latest retrain decisions and retrain runs, newest first."""
        params = {"limit": limit}
        return dict(
            self._send("GET", "/v1/monitoring/decisions", "Reading retrain decisions", token, params=params)
        )

    # ------------------------------------------------------------------ safe rollout (admin)
    def shadow(self, token: str) -> dict[str, Any]:
        """The challenger against the champion on the same live listings, and what the API scores."""
        return dict(self._send("GET", "/v1/monitoring/shadow", "Reading the shadow comparison", token))

    def challenge(self, token: str, version: str) -> dict[str, Any]:
        """Put `version` in shadow (the challenger alias); the API loads it at once."""
        body = {"version": str(version)}
        return dict(
            self._send("POST", "/v1/model/challenger", "Putting the version in shadow", token, json=body)
        )

    def clear_challenger(self, token: str) -> dict[str, Any]:
        """Take the challenger alias away: shadow scoring stops."""
        return dict(self._send("DELETE", "/v1/model/challenger", "Removing the challenger", token))

    def promote_challenger(self, token: str) -> dict[str, Any]:
        """Promote the challenger if the live rule holds; the API records the decision either way."""
        return dict(self._send("POST", "/v1/model/promote-challenger", "Promoting the challenger", token))

    def review_queue(self, token: str, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Unlabelled predictions below the confidence threshold, newest first."""
        params = {"limit": limit, "offset": offset}
        return dict(self._send("GET", "/v1/review", "Reading the review queue", token, params=params))

    def review_image(self, token: str, prediction_id: str) -> bytes:
        """The JPEG thumbnail of the image sent with a listed prediction (admin)."""
        path = f"/v1/review/{prediction_id}/image"
        return self._send_raw("GET", path, "Reading the listing's image", token).content

    # ------------------------------------------------------------------ training data
    def data_sources(self, token: str) -> dict[str, Any]:
        """The training data sets the API can summarise, with the champion and pipeline versions."""
        return dict(self._send("GET", "/v1/data/sources", "Reading the training data sets", token))

    def data_summary(self, token: str, source_id: str) -> dict[str, Any]:
        """Rows, class counts and text-length bands of one data set."""
        path = f"/v1/data/sources/{source_id}/summary"
        return dict(self._send("GET", path, "Summarising the training data", token))

    def data_examples(self, token: str, source_id: str, code: int, n: int = 8) -> dict[str, Any]:
        """Up to `n` listings of class `code` with their images (base64)."""
        path = f"/v1/data/sources/{source_id}/examples"
        params = {"code": int(code), "n": n}
        return dict(self._send("GET", path, "Reading example listings", token, params=params))
