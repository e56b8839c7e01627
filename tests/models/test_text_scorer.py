"""The text model's fast scorer gives exactly scikit-learn's numbers, and only where it does."""

from __future__ import annotations

import io
import pickle
import sys
import threading
from collections.abc import Iterator

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.special import logsumexp

from rakuten_mlops.config import TextParams
from rakuten_mlops.models.char_wb import CharWbColumns
from rakuten_mlops.models.text import NB_LOG_FLOOR, TextClassifier
from rakuten_mlops.models.text_scorer import CsrRows, TextScorer, _logsumexp_rows
from rakuten_mlops.simulation.core.sample import generate_listings

SETUPS = {
    "stack": {"model": "stack"},
    "svm": {"model": "svm"},
    "weighted-blocks": {"model": "svm_balanced", "word_weight": 0.6, "description_weight": 0.3},
    "char-no-cut": {"model": "stack", "title_max_chars": None, "char_analyzer": "char", "word_ngram_max": 1},
    "titles-only": {"model": "stack", "description_weight": 0.0, "sublinear_tf": False},
    "char-wb-from-2": {"model": "svm", "char_ngram_min": 2, "char_ngram_max": 4, "strip_accents": False},
}
# Every character str.split() splits on (and the regex `\s` matches): the last is U+3000.
WHITE_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# Texts as a char_wb analyzer may meet them (the model's own cleaning removes some of this first):
# accents, no-break and odd spaces, tabs and newlines, repeated words, empty and blank texts,
# very long words, words shorter than n, characters NFKD changes (ligatures, ß, a spacing
# diaeresis that becomes a space) and a Greek capital sigma whose lower case depends on its place.
AWKWARD = [
    "",
    "   \t\n ",
    "Piscine\u00a0hors-sol\tIntex\n\nfiltre à sable",
    "piscine piscine PISCINE piscine",
    "Élégant café crème, déjà vu — naïve façade",
    "straße STRASSE Straẞe ﬁlet ﬂeur ﬀ ﬃ Ⅻ ½ ²",
    "a b c 1 2 x à é",
    "x" * 5000,
    "anticonstitutionnellement" * 40 + " court",
    "ΟΔΟΣ ΣΟΦΟΣ σοφος",
    "mot¨tréma a´b",
    f"un{WHITE_SPACE}deux{WHITE_SPACE}trois",
    "全角　スペース  混在 texte",
    " leading and trailing ",
]

# Batches (titles, descriptions) whose arrays are easy to get wrong: rows with no entry (first,
# between others, last, all of them), n-grams repeated within a row (counts to sum), one long row.
EDGE_BATCHES = {
    "one empty row": ([""], [""]),
    "only unknown words": (["qwzx vbnm"], ["zzqx wvkj"]),
    "empty rows among others": (
        ["", "Piscine gonflable", "", "qwzx", "Lot de 3 T-shirts", ""],
        ["", "filtre à sable", "", "", "taille 4 ans", ""],
    ),
    "all rows empty": (["", "", ""], ["", "", ""]),
    "repeated n-grams": (["piscine piscine PISCINE piscine", "a a a"], ["piscine " * 50, "spa spa"]),
    "one long row": (["Piscine hors-sol " * 20], ["Élégant café crème, déjà vu " * 200]),
}


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return generate_listings(12, seed=1)


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    """Held-out listings plus the awkward ones: empty, unknown words, markup, a repeated title, unicode."""
    held = generate_listings(4, seed=2)[["designation", "description"]]
    odd = pd.DataFrame(
        {
            "designation": ["", "qwzx vbnm", "Piscine &amp; <b>spa</b> gonflable", "Piscine piscine piscine",
                            "x" * 300, "Lot de 3 T-shirts taille 4 ans", "Straße ﬁlet\u00a0crème",
                            "ΟΔΟΣ a b"],
            "description": ["", "", "<p>Filtre &agrave; sable</p><br />" * 20, "piscine", "", None,
                            "Élégant\tcafé\n\ndéjà vu " * 30, "x" * 3000],
        }
    )  # fmt: skip
    return pd.concat([held, odd], ignore_index=True)


def fitted(train: pd.DataFrame, **params: object) -> TextClassifier:
    p = TextParams(sentence_encoder=None, calibration_cv=2, **params)  # type: ignore[arg-type]
    return TextClassifier(p, random_state=0).fit(train, train["prdtypecode"])


@pytest.fixture(scope="module", params=list(SETUPS), ids=list(SETUPS))
def model(request: pytest.FixtureRequest, train: pd.DataFrame) -> TextClassifier:
    """The model of each set-up, fitted once for the tests that use it."""
    return fitted(train, **SETUPS[request.param])


def scorer_of(model: TextClassifier, max_cached_words: int) -> TextScorer:
    """A new scorer of `model`'s parts, built as `TextClassifier.scorer` builds it but for the cache bound."""
    words = [n for n in ("word", "text_word") if n in model.vectorizers_]
    stacker = getattr(model, "stacker_", None) if model.chosen_ == "stack" else None
    return TextScorer(
        model.vectorizers_, model._weights(), words, model.members_, stacker, NB_LOG_FLOOR, max_cached_words
    )


def caches(scorer: TextScorer) -> list[CharWbColumns]:
    return [b.by_word for b in scorer.blocks if b.by_word is not None]


def assert_same_features(got: dict[str, sparse.csr_matrix], expected: dict[str, sparse.csr_matrix]) -> None:
    for name in ("all", "words"):
        assert got[name].shape == expected[name].shape
        assert got[name].dtype == expected[name].dtype == np.float32
        assert np.array_equal(got[name].indptr, expected[name].indptr)
        assert np.array_equal(got[name].indices, expected[name].indices)
        assert np.array_equal(got[name].data, expected[name].data)


def test_the_scorer_gives_scikit_learns_probabilities_bit_for_bit(
    model: TextClassifier, listings: pd.DataFrame
) -> None:
    assert isinstance(model.scorer(), TextScorer)  # the fast path is the one measured here
    expected = model.predict_proba_reference(listings)
    assert np.array_equal(model.predict_proba(listings), expected)
    for start, size in ((0, 1), (5, 8), (3, 32)):  # one listing, a micro-batch, a batch
        part = listings.iloc[start : start + size]
        assert np.array_equal(model.predict_proba(part), model.predict_proba_reference(part))
    listed = model.predict_proba_listings(list(listings["designation"]), list(listings["description"]))
    assert np.array_equal(listed, expected)


def test_awkward_texts_give_scikit_learns_features_from_the_word_cache_too(model: TextClassifier) -> None:
    """Texts given to the vectorizers as they are (no cleaning): the first call fills the word
    caches, the second reads every word from them; both give scikit-learn's matrices."""
    scorer = scorer_of(model, max_cached_words=10_000)
    texts = model._texts_of(AWKWARD, AWKWARD[::-1])
    expected = model._features_of(texts, fit=False)
    assert_same_features(scorer.features(texts), expected)
    filled = [c.cached_words for c in caches(scorer)]
    assert len(filled) == sum(v.analyzer == "char_wb" for v in model.vectorizers_.values())
    assert all(filled)
    assert_same_features(scorer.features(texts), expected)
    assert [c.cached_words for c in caches(scorer)] == filled  # no word computed again: all hits
    for i in range(len(AWKWARD)):  # each text alone, from the cache
        one = {name: column[i : i + 1] for name, column in texts.items()}
        assert_same_features(scorer.features(one), model._features_of(one, fit=False))


def test_the_scorer_builds_the_same_sparse_features(train: pd.DataFrame, listings: pd.DataFrame) -> None:
    model = fitted(train, model="stack", word_weight=0.7)
    scorer = model.scorer()
    assert scorer is not None
    texts = model._texts(listings)
    assert_same_features(scorer.features(texts), model._features_of(texts, fit=False))


@pytest.mark.parametrize("batch", list(EDGE_BATCHES))
def test_the_scorers_arrays_give_scikit_learns_features_and_scores_on_edge_cases(
    model: TextClassifier, batch: str
) -> None:
    """The arrays the prediction path scores (`rows`), not only the matrices built from them."""
    scorer = model.scorer()
    assert isinstance(scorer, TextScorer)
    texts = model._texts_of(*EDGE_BATCHES[batch])
    rows = scorer.rows(texts)
    expected = model._features_of(texts, fit=False)
    assert_same_features({name: r.csr() for name, r in rows.items()}, expected)
    got = scorer.member_scores(rows)
    assert got.keys() == scorer.members.keys()
    for name, scores in got.items():
        assert scores.dtype == np.float32
        assert np.array_equal(scores, model._scores(name, model.members_[name], expected))
    assert np.array_equal(model._proba(texts, scorer), model._proba(texts, None))


def test_csr_rows_multiply_by_a_dense_matrix_as_scipy_does() -> None:
    """Sums whose order shows (magnitudes far apart, long rows) and rows with no entry: scipy's numbers."""
    rng = np.random.default_rng(0)
    lengths = [0, 3, 0, 2000, 1, 0]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    indices = np.concatenate([np.sort(rng.choice(5000, n, replace=False)) for n in lengths]).astype(np.int32)
    data = (rng.random(int(indptr[-1])) * 10.0 ** rng.integers(-8, 8, int(indptr[-1]))).astype(np.float32)
    x = CsrRows(data, indices, indptr, len(lengths), 5000)
    coef = rng.standard_normal((27, 5000)) * 10.0 ** rng.integers(-8, 8, (27, 5000))
    for dense in (coef.T, np.ascontiguousarray(coef.T), coef.T.astype(np.float32), coef[:1].T):
        got, expected = x.dot(dense), np.asarray(x.csr() @ dense)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected)
        assert not got[[0, 2, 5]].any()  # empty rows score 0
    assert x.dot(coef.T[:, :0]).shape == (6, 0)
    empty = CsrRows(data[:0], indices[:0], np.zeros(1, dtype=np.int32), 0, 5000)
    assert x.csr().shape == (6, 5000) and empty.dot(coef.T).shape == (0, 27)


def test_the_row_log_sum_exp_is_scipys_bit_for_bit() -> None:
    """What naive Bayes' predict_log_proba normalises by: rows far apart, tied maxima, -inf entries."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 27)) * 10.0 ** rng.integers(-3, 4, (64, 1))
    a[1, :3] = a[1].max() + 1.0
    a[2, 5:] = -np.inf
    a[3] = -np.inf
    a[4] = 700.0
    for rows in (a, a[:1], a[1:2], a[3:4]):
        assert np.array_equal(_logsumexp_rows(rows), logsumexp(rows, axis=1))


def test_the_word_caches_hold_no_more_than_their_bound_and_stay_exact(
    train: pd.DataFrame, listings: pd.DataFrame
) -> None:
    model = fitted(train, model="stack")
    scorer = scorer_of(model, max_cached_words=7)
    texts = model._texts(listings)
    for start in range(0, len(listings), 3):  # many more distinct words than 7, three listings a call
        part = {name: column[start : start + 3] for name, column in texts.items()}
        assert_same_features(scorer.features(part), model._features_of(part, fit=False))
        assert all(1 <= c.cached_words <= 7 for c in caches(scorer))
    with pytest.raises(ValueError, match="max_words must be at least 1"):
        scorer_of(model, max_cached_words=0)
    with pytest.raises(ValueError, match="not analyzer='word'"):
        CharWbColumns(model.vectorizers_["word"])


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Threads switched every microsecond, so that two predictions interleave within a call."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("switch_often")
def test_two_threads_predicting_at_once_get_what_one_thread_gets(
    train: pd.DataFrame, listings: pd.DataFrame
) -> None:
    model = fitted(train, model="stack")
    designations, descriptions = list(listings["designation"]), list(listings["description"])
    halves = [slice(0, len(listings) // 2), slice(len(listings) // 2, None)]
    # Each half as one thread predicts it alone, through scikit-learn. Per half, not sliced from a
    # prediction of all rows: the stacker's matrix product may round a row differently with
    # another number of rows (which BLAS kernel runs depends on the shape and the CPU).
    expected = {h.start: model.predict_proba_reference(listings.iloc[h]) for h in halves}
    scorer = model.scorer()
    assert scorer is not None
    for cache in caches(scorer):
        cache.max_words = 40  # small: the caches are emptied while the other thread reads them
    start = threading.Barrier(2)
    got: list[list[np.ndarray]] = [[], []]
    errors: list[BaseException] = []

    def predict(k: int) -> None:
        try:
            start.wait()
            for _ in range(15):
                rows = halves[k] if _ % 2 else halves[1 - k]  # both threads read both halves' words
                got[k].append(model.predict_proba_listings(designations[rows], descriptions[rows]))
        except BaseException as e:  # reported below: an exception in a thread would go unseen
            errors.append(e)

    threads = [threading.Thread(target=predict, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in (0, 1):
        for j, proba in enumerate(got[k]):
            rows = halves[k] if j % 2 else halves[1 - k]
            assert np.array_equal(proba, expected[rows.start])
    assert all(c.cached_words <= 40 for c in caches(scorer))


def test_a_scorer_that_differs_by_any_amount_is_not_used(
    train: pd.DataFrame, listings: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fitted(train, model="stack")
    exact = TextScorer.stack_proba

    def nearly(self: TextScorer, meta: np.ndarray) -> np.ndarray:
        out = exact(self, meta)
        out[:, 0] += 1e-12
        return out

    monkeypatch.setattr(TextScorer, "stack_proba", nearly)
    assert model.scorer() is None
    assert np.array_equal(model.predict_proba(listings), model.predict_proba_reference(listings))


def test_the_scorer_is_never_pickled_and_a_model_saved_without_it_predicts_the_same(
    train: pd.DataFrame, listings: pd.DataFrame
) -> None:
    model = fitted(train, model="stack")
    before = model.predict_proba(listings)  # builds the scorer
    assert model.scorer() is not None
    buf = io.BytesIO()
    joblib.dump(model, buf)
    assert b"TextScorer" not in pickle.dumps(model)
    buf.seek(0)
    loaded = joblib.load(buf)
    assert "_scorer_cache" not in vars(loaded)  # what a model saved before the scorer looks like
    assert np.array_equal(loaded.predict_proba(listings), before)
    assert isinstance(loaded.scorer(), TextScorer)


def test_a_refitted_copy_scores_with_its_own_parts(train: pd.DataFrame, listings: pd.DataFrame) -> None:
    model = fitted(train, model="svm")
    model.predict_proba(listings)  # the original's scorer, cached on it
    more = pd.concat([train, generate_listings(3, seed=9)], ignore_index=True)
    refitted = model.refit(more, more["prdtypecode"])  # a shallow copy with new vectorizers and SVM
    assert refitted.scorer() is not model.scorer()
    assert np.array_equal(refitted.predict_proba(listings), refitted.predict_proba_reference(listings))
    assert not np.array_equal(refitted.predict_proba(listings), model.predict_proba(listings))
