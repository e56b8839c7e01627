"""Text model: TF-IDF n-grams → the linear model that cross-validation picks, with calibrated probabilities.

Features: word 1-2-grams and char_wb n-grams of the cleaned title, and — when the training data
has descriptions — word and char_wb n-grams of title + description in blocks of their own.

Candidates (simplest first, see :data:`CANDIDATES`):

* ``svm``: a linear SVM; probabilities are its scores through a softmax whose temperature is
  fitted on out-of-fold scores (one parameter, so it calibrates without moving any decision);
* ``svm_balanced``: the same with class weights inversely proportional to class sizes (on a few
  hundred rows per class it lifts the small classes, and so weighted F1);
* ``stack``: the SVM and a complement naive Bayes, blended and calibrated by a multinomial
  logistic regression on their out-of-fold scores (it needs thousands of rows to pay off);
* ``<base>+use`` (``svm+use``, ``svm_balanced+use``, ``stack+use``): the base candidate's
  probabilities pooled with those of a logistic regression on multilingual sentence embeddings of
  title + description (:mod:`rakuten_mlops.features.sentences`): ``softmax(a·log p_base + b·log
  p_use)``, with the two weights fitted on out-of-fold probabilities by log-loss (convex in a, b).
  The embeddings know words the training rows never showed (and their translations), which the
  n-grams cannot: +0.016 weighted F1 on en17k and +0.07 on head499 over the TF-IDF model alone;
* ``stack+use+joint``: ``stack+use`` pooled with a third model, ``joint``: a linear SVM on the
  TF-IDF blocks *and* the embeddings' first `joint_dims` principal components (one more block,
  scaled to the TF-IDF blocks' unit norm), calibrated by a softmax temperature. The n-grams and
  the embeddings then share one decision instead of only being averaged: +0.003 weighted F1 on
  en17k (two splits) over ``stack+use``. Adding members to the stacker instead (the embedding
  model, this SVM, a balanced SVM, a k-NN or an MLP on the embeddings) scored 0.003-0.01 lower in
  every case: the 27 x k-column stacker over-fits where a pool weight does not.

One pass of k folds fits every base model a candidate needs; each candidate's out-of-fold
predictions give its cross-validated log-loss and weighted F1, and the best mean of the
``selection`` metric wins (a more complex candidate must beat a simpler one by more than
``selection_margin``). The vectorizers are fitted once on all training rows (unsupervised), every
base model once per fold, and only the chosen candidate's base models once more on every row (each
SVM spread over the cores by class, see :func:`fit_svm`); the most complex candidate's are fitted
beside the stacker, before selection ends (all but the joint SVM, the slowest fit, which waits
until it is chosen). Every fit uses one BLAS thread and the work is spread
over processes. :meth:`TextClassifier.refit` relearns the chosen model on more rows without a new
selection:
one fit for the SVMs and the embedding model (temperature and pooling weights are kept), a new
out-of-fold pass for the stack.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from scipy import sparse
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_class_weight
from threadpoolctl import threadpool_limits

from rakuten_mlops.config import TEXT_CANDIDATES, TextParams
from rakuten_mlops.errors import InvalidInputError
from rakuten_mlops.features.sentences import SentenceCache, SentenceEncoder
from rakuten_mlops.features.text import clean_descriptions, clean_titles, frame_descriptions, frame_titles
from rakuten_mlops.models.text_scorer import TextScorer

log = logging.getLogger(__name__)

# Simplest first: on a tie the earlier one is kept.
CANDIDATES = TEXT_CANDIDATES
# Base models each base candidate needs; `+use` adds the embedding model "use", `+joint` the SVM
# on TF-IDF blocks and embedding components, "joint" (the pooled members, in pooling order).
_MEMBERS = {"svm": ("svm",), "svm_balanced": ("svm_balanced",), "stack": ("svm", "nb")}
# The linear SVMs among the base models.
_SVMS = ("svm", "svm_balanced", "joint")
# Probabilities are floored before the log in the pooling (a stacker can round one to 0).
LOG_FLOOR = 1e-12


def _base_of(candidate: str) -> str:
    return candidate.split("+")[0]


def _pooled_of(candidate: str) -> tuple[str, ...]:
    """The models a candidate pools with its base, in pooling order ("stack+use+joint" -> use, joint)."""
    return tuple(candidate.split("+")[1:])


def _members_of(candidate: str) -> tuple[str, ...]:
    return _MEMBERS[_base_of(candidate)] + _pooled_of(candidate)


# Single-character tokens kept: sizes, grades and versions ("t 4", "5 g") carry class signal.
TOKEN_PATTERN = r"(?u)\b\w+\b"
# Naive-Bayes log-probabilities are clipped so one unseen-ish word cannot dominate the stacker.
NB_LOG_FLOOR = -30.0


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated linear model on TF-IDF features of the listing text, chosen by cross-validation.

    Input: a DataFrame with `designation` and (optionally) `description`.
    After `fit`: `classes_`, `chosen_` (the candidate that won), `selection_` (every candidate's
    cross-validated score) and `oof_proba_` (out-of-fold calibrated probabilities of the training
    rows, in `classes_` order) for the fusion stage.

    Two attributes that are not parameters and are never pickled: `sentence_cache`, where `fit`,
    `refit` and `predict_proba` read and write sentence embeddings by text hash (a rerun on the
    same texts does not embed them again), and `embed_progress`, which is given the number of
    texts to embed and returns the callback that advances a progress bar.
    """

    sentence_cache: SentenceCache | None = None
    embed_progress: Callable[[int], Callable[[int], None]] | None = None
    # Models saved before the `joint` SVM existed have none.
    projection_: Projection | None = None

    def __init__(self, params: TextParams | None = None, random_state: int = 42) -> None:
        self.params = params
        self.random_state = random_state

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives __dict__ itself
        state.pop("sentence_cache", None)  # a path on the training machine: not the served model's
        state.pop("embed_progress", None)
        state.pop("_scorer_cache", None)  # rebuilt from the fitted parts on the first prediction
        # Wall-clock timings differ between two fits of the same model: kept out of the artefact,
        # whose SHA-256 is what makes registering the same model twice a no-op.
        state.pop("seconds_", None)
        return state

    def _p(self) -> TextParams:
        return self.params or TextParams()

    # ------------------------------------------------------------------ features
    def _vectorizer(self, **kwargs: object) -> TfidfVectorizer:
        p = self._p()
        return TfidfVectorizer(
            min_df=p.min_df,
            max_features=p.max_features,
            sublinear_tf=p.sublinear_tf,
            strip_accents="unicode" if p.strip_accents else None,
            dtype=np.float32,
            **kwargs,  # type: ignore[arg-type]
        )

    def _make_vectorizers(self) -> dict[str, TfidfVectorizer]:
        """Title word + title char blocks; title + description word and char blocks.

        Separate blocks keep a long description from diluting the title's TF-IDF weights (each
        block is L2-normalised on its own); the joined blocks read the description, in its
        context, where a title says little. Titles are cut to `title_max_chars` for the title
        blocks: exports that put the description into `designation` keep a short title signal,
        and the whole text still reaches the joined blocks.
        """
        p = self._p()
        word = {"analyzer": "word", "ngram_range": (1, p.word_ngram_max), "token_pattern": TOKEN_PATTERN}
        char = {"analyzer": p.char_analyzer, "ngram_range": (p.char_ngram_min, p.char_ngram_max)}
        out = {"word": self._vectorizer(**word), "char": self._vectorizer(**char)}
        if p.description_weight > 0:
            out["text_word"] = self._vectorizer(**word)
            out["text_char"] = self._vectorizer(analyzer=p.char_analyzer, ngram_range=(2, p.char_ngram_max))
        return out

    def _weights(self) -> dict[str, float]:
        p = self._p()
        d = p.description_weight
        return {"word": p.word_weight, "char": 1.0, "text_word": d, "text_char": d}

    def _texts(self, X: pd.DataFrame) -> dict[str, list[str]]:
        return self._texts_of(frame_titles(X), frame_descriptions(X))

    def _texts_of(self, titles: list[str], descriptions: list[str]) -> dict[str, list[str]]:
        """The text each block reads, from cleaned titles and descriptions."""
        limit = self._p().title_max_chars
        short = [t[:limit] for t in titles] if limit else titles
        joined = [f"{t} {d}" if d else t for t, d in zip(titles, descriptions, strict=True)]
        return {"word": short, "char": short, "text_word": joined, "text_char": joined}

    def _features(
        self, X: pd.DataFrame, fit: bool, sentences: bool = False, seconds: dict[str, float] | None = None
    ) -> dict[str, Any]:
        return self._features_of(self._texts(X), fit, sentences, seconds)

    def _features_of(
        self,
        texts: dict[str, list[str]],
        fit: bool,
        sentences: bool = False,
        seconds: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """`all`: every TF-IDF block (the SVM's input); `words`: the word blocks (naive Bayes');
        `sentences`: the embeddings of title + description when asked for, else None.
        `seconds`, when given, receives the time spent on the TF-IDF blocks and on the embeddings."""
        started = time.perf_counter()
        if fit and texts["word"] == texts["text_word"]:
            # No description and no title longer than `title_max_chars`: the joined blocks would
            # repeat the title blocks.
            self.vectorizers_.pop("text_word", None)
            self.vectorizers_.pop("text_char", None)
        blocks = {}
        for name, vec in self.vectorizers_.items():
            m = vec.fit_transform(texts[name]) if fit else vec.transform(texts[name])
            if fit:
                vec.stop_words_ = None  # only for introspection; it would bloat the pickle
            blocks[name] = m * self._weights()[name]
        words = [blocks[n] for n in ("word", "text_word") if n in blocks]
        out = {
            "all": sparse.hstack(list(blocks.values()), format="csr"),
            "words": sparse.hstack(words, format="csr"),
            "sentences": None,
        }
        tfidf_done = time.perf_counter()
        if sentences:
            out["sentences"] = self._sentences(texts)
            if self.projection_ is not None:
                out["joint"] = self._joint_block(out["all"], out["sentences"])
        if seconds is not None:
            seconds["tfidf"] = tfidf_done - started
            seconds["sentences"] = time.perf_counter() - tfidf_done
        return out

    def _joint_block(self, tfidf: sparse.csr_matrix, sentences: np.ndarray) -> sparse.csr_matrix:
        """The `joint` SVM's input: the TF-IDF blocks, then the embeddings' projection."""
        if self.projection_ is None:
            raise InvalidInputError("this text model has no joint SVM")
        return sparse.hstack([tfidf, sparse.csr_matrix(self.projection_.apply(sentences))], format="csr")

    def _sentences(self, texts: dict[str, list[str]]) -> np.ndarray:
        """Sentence embeddings of title + description."""
        if self.encoder_ is None:
            raise InvalidInputError("this text model has no sentence encoder")
        advance = self.embed_progress(len(texts["text_word"])) if self.embed_progress else None
        return self.encoder_.encode(texts["text_word"], self.sentence_cache, on_progress=advance)

    # ------------------------------------------------------------------ base models
    def _base(self, name: str) -> Any:
        p = self._p()
        if name == "nb":
            return ComplementNB(alpha=p.nb_alpha)
        if name == "use":
            return LogisticRegression(C=p.sentence_C, max_iter=500)
        if name == "joint":
            return LinearSVC(C=p.C, class_weight=p.class_weight, random_state=self.random_state)
        weight = "balanced" if name == "svm_balanced" else p.class_weight
        return LinearSVC(C=p.C, class_weight=weight, random_state=self.random_state)

    @staticmethod
    def _scores(
        name: str, model: Any, feats: dict[str, Any], rows: np.ndarray | slice = slice(None)
    ) -> np.ndarray:
        # float32 halves the stacker's fit time and changes no decision measurably.
        if name == "nb":
            return np.maximum(model.predict_log_proba(feats["words"][rows]), NB_LOG_FLOOR).astype(np.float32)
        if name == "use":
            # Floored like the pooling's other input: a probability that underflows to 0 would give
            # -inf, and 0 * -inf = nan where the pooling weighs this model by 0.
            with np.errstate(divide="ignore"):
                log_p = model.predict_log_proba(feats["sentences"][rows].astype(np.float32))
            return np.maximum(log_p, np.log(LOG_FLOOR)).astype(np.float32)
        return model.decision_function(feats[_BLOCK.get(name, "all")][rows]).astype(np.float32)

    def _stacker(self) -> Pipeline:
        # Centred, not scaled: standardising regularises the (wide-range) naive-Bayes block as
        # hard as the SVM block, which cost 0.004-0.007 weighted F1 in a 5-fold check on en17k
        # at any C tried. Centring only speeds the solver up (the intercept is not penalised).
        lr = LogisticRegression(C=self._p().calibration_C, solver="newton-cg", max_iter=300)
        return make_pipeline(StandardScaler(with_std=False), lr)

    def _candidates(self) -> tuple[str, ...]:
        p = self._p()
        names: tuple[str, ...] = CANDIDATES if p.model == "auto" else (p.model,)
        if p.nb_alpha is None:
            names = tuple(n for n in names if _base_of(n) != "stack")
        if p.sentence_encoder is None:
            names = tuple(n for n in names if not _pooled_of(n))
        if p.joint_dims is None:
            names = tuple(n for n in names if "joint" not in _pooled_of(n))
        return names or ("svm",)

    # ------------------------------------------------------------------ fit
    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> TextClassifier:
        # One BLAS thread (see `_fit_base`): the work is spread over processes instead.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X, y)

    def _fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> TextClassifier:
        p = self._p()
        y = np.asarray(y)
        classes, counts = np.unique(y, return_counts=True)
        folds = int(min(p.calibration_cv, counts.min()))
        if folds < 2:
            raise InvalidInputError("every class needs at least 2 training rows to calibrate probabilities")
        candidates = self._candidates()
        members = tuple(dict.fromkeys(m for c in candidates for m in _members_of(c)))
        self.vectorizers_ = self._make_vectorizers()
        self.encoder_ = SentenceEncoder(p.sentence_max_chars) if "use" in members else None
        self.projection_ = None
        seconds: dict[str, float] = {}
        feats = self._features(X, fit=True, sentences="use" in members, seconds=seconds)
        if "joint" in members:  # unsupervised, like the vectorizers: fitted once on every training row
            assert p.joint_dims is not None  # `_candidates` leaves +joint out otherwise
            self.projection_ = Projection.fit(feats["sentences"], p.joint_dims)
            feats["joint"] = self._joint_block(feats["all"], feats["sentences"])
        clock = time.perf_counter()
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        splits = list(cv.split(feats["all"], y))
        # One task per (fold, base model), in worker processes: each fit is deterministic alone,
        # so the result depends neither on the number of cores nor on timing (see `_fit_base`).
        tasks = [(f, m) for m in members for f in range(len(splits))]
        fitted = Parallel(n_jobs=min(len(tasks), effective_n_jobs(-1)))(
            delayed(_fit_base)(m, self._base(m), feats[_BLOCK.get(m, "all")], y, splits[f][0])
            for f, m in tasks
        )
        oof = {m: np.zeros((len(y), len(classes)), np.float32) for m in members}
        for (f, m), model in zip(tasks, fitted, strict=True):
            held = splits[f][1]
            oof[m][held] = self._scores(m, model, feats, held)
        seconds["folds"], clock = time.perf_counter() - clock, time.perf_counter()
        self.classes_ = classes
        codes = np.searchsorted(classes, y)
        # Second pass, in worker processes too: the stacker learns from the out-of-fold scores while
        # the most complex candidate's base models (the one that wins on large data) are fitted on
        # every row; selection then only waits for another base model when a simpler one wins.
        # The joint SVM is left out unless it is the only choice: it is the slowest base fit (on 59k
        # generated rows its fold fits took 40 s of 180, its final fit here 19 s) and it wins only
        # by a margin on large real data; chosen, it is fitted after selection like any other.
        ahead = tuple(m for m in _members_of(candidates[-1]) if m != "joint" or len(candidates) == 1)
        bases_needed = tuple(dict.fromkeys(map(_base_of, candidates)))
        meta = np.hstack([oof["svm"], oof["nb"]]) if "stack" in bases_needed else None
        stack, final = self._second_pass(meta, y, splits, feats, ahead)
        seconds["stacker_and_final_fits"], clock = time.perf_counter() - clock, time.perf_counter()
        bases = {b: self._oof_base(b, oof, y, splits) for b in bases_needed if b != "stack"}
        if stack is not None:
            bases["stack"] = stack[1]
        # Out-of-fold log-probabilities of the pooled models (the joint SVM's temperature out of fold too).
        pooled = {"use": oof["use"]} if "use" in members else {}
        if "joint" in members:
            pooled["joint"] = _log(self._oof_base("joint", oof, y, splits))
        probas = {
            c: self._oof_pooled(bases[_base_of(c)], [pooled[m] for m in _pooled_of(c)], codes, splits)
            if _pooled_of(c)
            else bases[c]
            for c in candidates
        }
        self.selection_ = self._select(probas, y, splits)
        self.chosen_ = self.selection_["chosen"]
        base = _base_of(self.chosen_)
        seconds["selection"], clock = time.perf_counter() - clock, time.perf_counter()
        # Only the chosen candidate's base models are kept; one fitted ahead is not fitted again.
        missing = tuple(m for m in _members_of(self.chosen_) if m not in final)
        if missing:
            final.update(self._second_pass(None, y, splits, feats, missing)[1])
        self.members_ = {m: final[m] for m in _members_of(self.chosen_)}
        if stack is not None and base == "stack":
            self.stacker_ = stack[0]  # fitted on every row's out-of-fold scores
        else:
            self.temperature_ = _fit_temperature(oof[base], codes)
        if "joint" in self.members_:
            self.joint_temperature_ = _fit_temperature(oof["joint"], codes)
        else:
            self.projection_ = None
        if self.uses_sentences:
            logs = [_log(bases[base]), *(pooled[m] for m in _pooled_of(self.chosen_))]
            self.pooling_ = _fit_pooling(logs, codes)
        else:
            self.encoder_ = None
        self.oof_proba_ = probas[self.chosen_]
        seconds["final"] = time.perf_counter() - clock
        # Where the fit's time went (the pipeline's summaries report it); "final" is what the chosen
        # candidate still needed after selection (nothing when the most complex one won).
        self.seconds_ = {k: round(v, 2) for k, v in seconds.items()}
        return self

    def _fit_final(self, feats: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
        """The chosen candidate's base models on every row, in one pool (each SVM's classes split)."""
        with threadpool_limits(limits=1, user_api="blas"):
            return self._second_pass(None, y, [], feats, _members_of(self.chosen_))[1]

    def refit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> TextClassifier:
        """A copy that learned from new rows with this model's choice (no new selection).

        SVM bases: the vectorizers, the SVM and the embedding model are fitted once on `X`, and the
        softmax temperature and pooling weights are kept (they calibrate; keeping them moves no
        decision the new fits do not): one fit instead of k + 1. ``stack`` bases: the stacker weighs
        two models whose score scales grow with the rows they learned from, so it is fitted again
        on out-of-fold scores of the new rows (k + 1 fits of the two base models); keeping the train
        split's stacker cost 0.006 weighted F1 on en17k (13.6k rows, seed 0).
        """
        y = np.asarray(y)
        classes = np.unique(y)
        if not np.array_equal(classes, self.classes_):
            chosen_on = self.classes_.tolist()
            raise InvalidInputError(
                f"refit rows have classes {classes.tolist()}, the model knows {chosen_on}"
            )
        if _base_of(self.chosen_) == "stack":
            fixed = self._p().model_copy(update={"model": self.chosen_})
            new = TextClassifier(fixed, random_state=self.random_state)
            new.sentence_cache, new.embed_progress = self.sentence_cache, self.embed_progress
            new.fit(X, y)
            new.params, new.selection_ = self.params, self.selection_
        else:
            new = copy.copy(self)
            new.vectorizers_ = self._make_vectorizers()
            seconds: dict[str, float] = {}
            feats = new._features(X, fit=True, sentences=self.uses_sentences, seconds=seconds)
            clock = time.perf_counter()
            new.members_ = new._fit_final(feats, y)
            seconds["final"] = time.perf_counter() - clock
            new.seconds_ = {k: round(v, 2) for k, v in seconds.items()}
        new.oof_proba_ = None  # type: ignore[assignment]
        new.refit_rows_ = len(y)
        return new

    def _second_pass(
        self,
        meta: np.ndarray | None,
        y: np.ndarray,
        splits: list,
        feats: dict[str, Any],
        ahead: tuple[str, ...],
    ) -> tuple[tuple[Pipeline, np.ndarray] | None, dict[str, Any]]:
        """The stacker and its out-of-fold probabilities (when `meta` is given), and the `ahead`
        base models on every row, all in one pool of worker processes (the stacker's chain first:
        it is the longest task). Each SVM's classes are split into tasks of their own (`fit_svm`)."""
        tasks: list[Any] = []
        if meta is not None:
            tasks.append(delayed(_fit_stack)(self._stacker(), meta, y, splits))
        merges: dict[str, Callable[[list[Any]], Any]] = {}
        spans: dict[str, slice] = {}
        for m in ahead:
            start = len(tasks)
            if m not in _SVMS:
                tasks.append(delayed(_fit_base)(m, self._base(m), feats[_BLOCK[m]], y, np.arange(len(y))))
                merges[m] = _first
            else:
                x = feats[_BLOCK.get(m, "all")]
                svm_tasks, merge = svm_group_tasks(self._base(m), x, y, effective_n_jobs(-1))
                tasks += svm_tasks
                merges[m] = merge
            spans[m] = slice(start, len(tasks))
        done = Parallel(n_jobs=min(len(tasks), effective_n_jobs(-1)))(tasks) if tasks else []
        stack = done[0] if meta is not None else None
        fitted = {m: merges[m](done[spans[m]]) for m in ahead}
        for m in fitted:
            if m in _SVMS:  # weights column-major, as `_fit_base` stores them
                _column_major(fitted[m], "coef_")
        return stack, fitted

    def _oof_base(self, name: str, oof: dict[str, np.ndarray], y: np.ndarray, splits: list) -> np.ndarray:
        """Out-of-fold calibrated probabilities of an SVM candidate (no row's probability saw its label)."""
        codes = np.searchsorted(self.classes_, y)
        out = np.zeros((len(y), len(self.classes_)))
        for train, held in splits:  # the temperature too is fitted out of fold
            t = _fit_temperature(oof[name][train], codes[train])
            out[held] = _softmax(oof[name][held], t)
        return out

    @staticmethod
    def _oof_pooled(base: np.ndarray, logs: list[np.ndarray], codes: np.ndarray, splits: list) -> np.ndarray:
        """Out-of-fold probabilities of base pooled with other models' log-probabilities (weights
        fitted out of fold)."""
        inputs = [_log(base), *logs]
        out = np.zeros_like(base)
        for train, held in splits:
            weights = _fit_pooling([x[train] for x in inputs], codes[train])
            out[held] = _pool([x[held] for x in inputs], weights)
        return out

    def _select(self, probas: dict[str, np.ndarray], y: np.ndarray, splits: list) -> dict[str, Any]:
        """Every candidate's cross-validated weighted F1 and log-loss; the `selection` metric picks.

        Both are means over the held-out folds. With `selection: weighted_f1` (the default) the
        highest F1 wins, with `log_loss` the lowest log-loss; either way the simplest candidate
        within `selection_margin` of the best is kept. Log-loss scores every row's whole
        distribution, so it ranks steadily on a few hundred rows where F1 moves by whole rows, but
        it favours the candidates whose probabilities are fitted by log-loss (the stack, the
        pooled ones). Measured against the baseline on real labels (README): head499, 11 splits,
        +0.071 by log-loss vs +0.048 by F1; en17k 1k rows +0.055 vs +0.050, 3k rows +0.033 vs +0.039.
        """
        codes = np.searchsorted(self.classes_, y)
        scores: dict[str, dict[str, Any]] = {}
        for name, proba in probas.items():
            pred = self.classes_[proba.argmax(axis=1)]
            per_fold = [float(f1_score(y[h], pred[h], average="weighted")) for _, h in splits]
            losses = [float(-_log(proba[h, codes[h]]).mean()) for _, h in splits]
            scores[name] = {
                "cv_weighted_f1": round(float(np.mean(per_fold)), 4),
                "cv_log_loss": round(float(np.mean(losses)), 4),
                "folds": per_fold,
                "folds_log_loss": losses,
            }
        metric = self._p().selection
        # Higher is better for both, as compared here (log-loss negated).
        goodness = {
            n: float(np.mean(s["folds"])) if metric == "weighted_f1" else -float(np.mean(s["folds_log_loss"]))
            for n, s in scores.items()
        }
        best = max(goodness.values())
        chosen = next(n for n in probas if goodness[n] >= best - self._p().selection_margin)
        return {"chosen": chosen, "by": metric, "candidates": scores, "folds": len(splits), "rows": len(y)}

    # ------------------------------------------------------------------ predict
    @property
    def uses_sentences(self) -> bool:
        """Whether predicting embeds texts (a `+use` candidate was chosen)."""
        return bool(_pooled_of(self.chosen_))

    def transform(self, X: pd.DataFrame) -> sparse.csr_matrix:
        """The weighted TF-IDF blocks the SVM sees."""
        return self._features(X, fit=False)["all"]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated class probabilities (`classes_` order) of each row of `X`."""
        return self._proba(self._texts(X), self.scorer())

    def predict_proba_listings(
        self, designations: Sequence[object], descriptions: Sequence[object]
    ) -> np.ndarray:
        """`predict_proba` of listings given as two lists (no DataFrame: the serving path)."""
        texts = self._texts_of(clean_titles(designations), clean_descriptions(descriptions))
        return self._proba(texts, self.scorer())

    def predict_proba_reference(self, X: pd.DataFrame) -> np.ndarray:
        """`predict_proba` through scikit-learn's own predict calls (what `TextScorer` reproduces)."""
        return self._proba(self._texts(X), None)

    def _proba(self, texts: dict[str, list[str]], scorer: TextScorer | None) -> np.ndarray:
        if scorer is None:
            feats = self._features_of(texts, fit=False, sentences=self.uses_sentences)
            scores = {m: self._scores(m, model, feats) for m, model in self.members_.items()}
        else:
            rows = scorer.rows(texts)
            scores = scorer.member_scores(rows)
            if self.uses_sentences:
                emb = {"sentences": self._sentences(texts)}
                scores["use"] = self._scores("use", self.members_["use"], emb)
                if "joint" in self.members_:
                    joint = self._joint_block(rows["all"].csr(), emb["sentences"])
                    scores["joint"] = scorer.svm_scores(self.members_["joint"], joint)
        proba = self._base_proba(scores, scorer)
        if self.uses_sentences:
            return _pool(self.pooled_logs(proba, scores), self.pooling_)
        return proba

    def pooled_logs(self, base_proba: np.ndarray, scores: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The pool's inputs (weighted by `pooling_`): log-probabilities of the base candidate, then of
        each pooled model, from `base_proba` and `member_scores`."""
        logs = [_log(base_proba)]
        for m in _pooled_of(self.chosen_):
            joint = m == "joint"
            logs.append(log_softmax(scores[m] / self.joint_temperature_, axis=1) if joint else scores[m])
        return logs

    def _base_proba(self, scores: dict[str, np.ndarray], scorer: TextScorer | None) -> np.ndarray:
        base = _base_of(self.chosen_)
        if base != "stack":
            return _softmax(scores[base], self.temperature_)
        meta = np.hstack([scores["svm"], scores["nb"]])
        stacked = self.stacker_.predict_proba(meta) if scorer is None else scorer.stack_proba(meta)
        return _as_distribution(stacked)

    def scorer(self) -> TextScorer | None:
        """The fitted model's `TextScorer` (built on first use), None where it does not apply.

        None keeps scikit-learn's path: parts the scorer does not reproduce, or a scorer whose
        scores on probe texts differ from scikit-learn's by any amount (logged once).
        """
        parts = (self.vectorizers_, self.members_, getattr(self, "stacker_", None), self.chosen_)
        cached = getattr(self, "_scorer_cache", None)
        if cached is not None and all(a is b for a, b in zip(cached[0], parts, strict=True)):
            return cached[1]  # type: ignore[no-any-return]
        scorer = self._build_scorer()
        self._scorer_cache = (parts, scorer)
        return scorer

    def _build_scorer(self) -> TextScorer | None:
        stacker = getattr(self, "stacker_", None) if _base_of(self.chosen_) == "stack" else None
        if not TextScorer.supports(self.vectorizers_, self.members_, stacker):
            return None
        words = tuple(n for n in ("word", "text_word") if n in self.vectorizers_)
        scorer = TextScorer(self.vectorizers_, self._weights(), words, self.members_, stacker, NB_LOG_FLOOR)
        probe = self._probe_texts()
        # The TF-IDF part only: the embedding model is scored the same way on either path.
        tfidf = {m: model for m, model in self.members_.items() if m not in ("use", "joint")}
        feats = self._features_of(probe, fit=False)
        expected = {m: self._scores(m, model, feats) for m, model in tfidf.items()}
        got = scorer.member_scores(scorer.rows(probe))
        same = expected.keys() == got.keys() and all(np.array_equal(expected[m], got[m]) for m in expected)
        same = same and np.array_equal(self._base_proba(expected, None), self._base_proba(got, scorer))
        if not same:
            log.warning("the fast text scorer differs from scikit-learn's path on this model: not used")
            return None
        return scorer

    def _probe_texts(self) -> dict[str, list[str]]:
        """A few texts made of the model's own vocabulary (and one of none) to check a scorer on."""
        terms = [t for vec in self.vectorizers_.values() for t in list(vec.vocabulary_)[:40]]
        titles = ["", "zzqx " * 3, " ".join(terms[:30]), " ".join(terms[::3]), terms[-1] if terms else "a"]
        descriptions = [" ".join(terms[10:60]), "", "", " ".join(terms[::2]) * 2, "x"]
        return self._texts_of(titles, descriptions)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # ------------------------------------------------------------------ parts, for explanations
    @property
    def linear_member(self) -> str:
        """The SVM whose coefficients score the TF-IDF features (the stack's SVM for a stack)."""
        base = _base_of(self.chosen_)
        return "svm" if base == "stack" else base

    def feature_blocks(self, X: pd.DataFrame) -> dict[str, sparse.csr_matrix]:
        """The weighted TF-IDF blocks by name, in the order of the SVM's feature columns."""
        texts, weights = self._texts(X), self._weights()
        return {name: vec.transform(texts[name]) * weights[name] for name, vec in self.vectorizers_.items()}

    def block_texts(self, X: pd.DataFrame) -> dict[str, list[str]]:
        """The (cleaned) text each block's vectorizer reads, by block name."""
        return self._texts(X)

    def member_scores(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each base model's scores, as `predict_proba` combines them (the embedding model's: log p)."""
        return self.score_parts(X)[0]

    def score_parts(
        self, X: pd.DataFrame
    ) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
        """`member_scores(X)` and, for a joint model, the joint SVM's score split into its TF-IDF part
        and its embedding part (intercept apart; None without a joint SVM), from one feature pass."""
        feats = self._features(X, fit=False, sentences=self.uses_sentences)
        scores = {m: self._scores(m, model, feats) for m, model in self.members_.items()}
        if "joint" not in self.members_:
            return scores, None
        coef = self.members_["joint"].coef_
        n = feats["all"].shape[1]
        return scores, (
            np.asarray(feats["all"] @ coef[:, :n].T),
            np.asarray(feats["joint"][:, n:] @ coef[:, n:].T),
        )

    def base_proba(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The TF-IDF candidate's probabilities from `member_scores` (before any pooling)."""
        return self._base_proba(scores, None)

    @property
    def pooled_members(self) -> tuple[str, ...]:
        """The models pooled with the TF-IDF candidate, in `pooling_` order after it."""
        return _pooled_of(self.chosen_)


def selection_line(selection: dict[str, Any]) -> str:
    """What selection measured, as a log line: "chosen by cross-validated log-loss: svm 0.91 (F1 0.71), …"."""
    by = selection.get("by", "weighted_f1")  # summaries written before log-loss selection lack "by"
    parts = []
    for name, c in selection["candidates"].items():
        if by == "log_loss":
            parts.append(f"{name} {c['cv_log_loss']:.4f} (F1 {c['cv_weighted_f1']:.4f})")
        else:
            parts.append(f"{name} {c['cv_weighted_f1']:.4f}")
    label = "log-loss" if by == "log_loss" else "weighted F1"
    return f"chosen by cross-validated {label}: {', '.join(parts)}"


# The feature block each base model reads (the SVMs read "all").
_BLOCK = {"nb": "words", "use": "sentences", "joint": "joint"}


def _fit_base(name: str, model: Any, x: Any, y: np.ndarray, rows: np.ndarray, n_jobs: int = 1) -> Any:
    """One base model on `rows`; a module function so that worker processes can run it.

    Processes, not threads: liblinear draws its coordinate order from one random generator per
    process, seeded at the start of each fit; two SVMs fitted at once in threads interleave their
    draws, and the same data gave models that differed from run to run (out-of-fold probabilities
    by up to 1e-3 for the stack). One BLAS thread: a BLAS that splits a product over threads sums
    in an order that depends on their number, and the ill-conditioned stacker and the embedding
    model then stop at different points (coefficients 0.01-0.06 apart, 23 of 15k rows' answers
    for the stacker); on a shared 2-core machine one thread was also 2-3x faster.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_base_now(name, model, x, y, rows, n_jobs)


def _fit_base_now(name: str, model: Any, x: Any, y: np.ndarray, rows: np.ndarray, n_jobs: int) -> Any:
    if name == "nb":
        return _column_major(model.fit(x[rows], y[rows]), "feature_log_prob_")
    if name == "use":
        return model.fit(x[rows].astype(np.float32), y[rows])
    return _column_major(fit_svm(model, x[rows], y[rows], n_jobs), "coef_")


def _column_major(model: Any, attribute: str) -> Any:
    """Store a (classes x features) weight matrix column-major: the same numbers, faster to predict.

    Predicting computes sparse X @ W.T; scipy copies a W.T that is not row-major first, which for
    232k TF-IDF features and 27 classes is a 50 MB copy per call (15 ms for one listing, against
    0.1 ms without it). The product is computed the same way either way.
    """
    setattr(model, attribute, np.asfortranarray(getattr(model, attribute)))
    return model


def fit_svm(svm: LinearSVC, x: sparse.csr_matrix, y: np.ndarray, n_jobs: int = 1) -> LinearSVC:
    """Fit a one-vs-rest LinearSVC with its classes split over `n_jobs` processes; same model as `svm.fit`.

    liblinear trains one binary problem per class, class i against every other row, with C scaled
    by the class weight for class i's rows only. Relabelling the classes outside a group as one
    extra "rest" label gives a problem whose binary problems for the group's classes are exactly
    those (the rest's own is discarded), so each process trains its share of the classes (processes,
    not threads: see `_fit_base`).
    """
    tasks, merge = svm_group_tasks(svm, x, y, n_jobs)
    if len(tasks) == 1:  # one group: fitted here, no worker process
        return svm.fit(x, y)
    return merge(Parallel(n_jobs=len(tasks))(tasks))


def svm_group_tasks(
    svm: LinearSVC, x: sparse.csr_matrix, y: np.ndarray, n_jobs: int
) -> tuple[list[Any], Callable[[list[Any]], LinearSVC]]:
    """`fit_svm` as joblib tasks (one per group of classes) and the function that merges their results."""
    classes = np.unique(y)
    n_groups = min(n_jobs, len(classes) // 2)
    if n_groups < 2:
        return [delayed(_fit_whole)(svm, x, y)], _first
    codes = np.searchsorted(classes, y)  # labels of any type -> 0..K-1; the rest is -1
    code_groups = np.array_split(np.arange(len(classes)), n_groups)
    if svm.class_weight is None:
        weights = np.ones(len(classes))
    else:
        weights = compute_class_weight(svm.class_weight, classes=classes, y=y)
    x = x.astype(np.float64)  # liblinear works in float64: convert once, not once per process
    tasks = [
        delayed(_fit_group)(svm, x, codes, g, {int(c): float(weights[c]) for c in g}) for g in code_groups
    ]

    def merge(parts: list[LinearSVC]) -> LinearSVC:
        coef = np.zeros((len(classes), x.shape[1]))
        intercept = np.zeros(len(classes))
        for group, part in zip(code_groups, parts, strict=True):
            rows = np.searchsorted(part.classes_, group)
            coef[group], intercept[group] = part.coef_[rows], part.intercept_[rows]
        svm.coef_, svm.intercept_, svm.classes_ = coef, intercept, classes
        svm.n_features_in_ = x.shape[1]
        svm.n_iter_ = max(int(p.n_iter_) for p in parts)
        return svm

    return tasks, merge


def _first(parts: list[Any]) -> Any:
    return parts[0]


def _fit_whole(svm: LinearSVC, x: sparse.csr_matrix, y: np.ndarray) -> LinearSVC:
    return svm.fit(x, y)


def _fit_stack(
    stacker: Pipeline, meta: np.ndarray, y: np.ndarray, splits: list
) -> tuple[Pipeline, np.ndarray]:
    """The stacker on every row's out-of-fold scores, and its own out-of-fold probabilities.

    Each fold's stacker starts from the all-rows one (warm start): a few Newton steps instead of a
    full fit. Stratified folds with k <= the smallest class keep every class in every fold's
    training part, so the class order is the same. One BLAS thread, as in `_fit_base`.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        stacker.fit(meta, y)
        out = np.zeros((len(y), len(stacker.classes_)))
        for train, held in splits:
            fold = copy.deepcopy(stacker).set_params(logisticregression__warm_start=True)
            out[held] = _as_distribution(fold.fit(meta[train], y[train]).predict_proba(meta[held]))
    return stacker, out


def _fit_group(
    svm: LinearSVC, x: sparse.csr_matrix, codes: np.ndarray, group: np.ndarray, weights: dict[int, float]
) -> LinearSVC:
    labels = np.where(np.isin(codes, group), codes, -1)
    return clone(svm).set_params(class_weight=weights).fit(x, labels)


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    return np.exp(log_softmax(scores.astype(np.float64) / temperature, axis=1))


def _fit_temperature(scores: np.ndarray, codes: np.ndarray) -> float:
    """The softmax temperature that minimises the log-loss of `scores` (bounded, so it always exists)."""
    rows = np.arange(len(codes))
    s = scores.astype(np.float64)

    def loss(log_t: float) -> float:
        return float(-log_softmax(s / np.exp(log_t), axis=1)[rows, codes].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-6.0, 3.0), method="bounded").x))


def _as_distribution(proba: np.ndarray) -> np.ndarray:
    """float64 rows that sum to 1 (the stacker computes in float32)."""
    out = proba.astype(np.float64)
    return out / out.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Projection:
    """Sentence embeddings → their first principal components, scaled so that a training row's
    projection has unit norm on average (the TF-IDF blocks beside it have unit norm each).

    Fitted from the covariance's eigenvectors (exact and deterministic; 512 x 512 whatever the
    number of rows), each component's sign fixed by its largest entry.
    """

    mean: np.ndarray  # (d,) float32
    components: np.ndarray  # (d, k) float32, already divided by the scale

    @classmethod
    def fit(cls, embeddings: np.ndarray, dims: int, chunk: int = 8192) -> Projection:
        n, d = embeddings.shape
        k = min(dims, d)
        mean = embeddings.astype(np.float64).mean(axis=0)
        cov = np.zeros((d, d))
        for start in range(0, n, chunk):  # float64 one chunk at a time: no n x d float64 copy
            c = embeddings[start : start + chunk].astype(np.float64) - mean
            cov += c.T @ c
        values, vectors = np.linalg.eigh(cov / max(n, 1))
        order = np.argsort(values)[::-1][:k]
        comps = vectors[:, order]
        comps *= np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
        scale = float(np.sqrt(max(values[order].sum(), 1e-12)))
        return cls(mean.astype(np.float32), (comps / scale).astype(np.float32))

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        return (embeddings.astype(np.float32) - self.mean) @ self.components


def _log(proba: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(proba, LOG_FLOOR))


def _pool(logs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """softmax(Σ w_i · log p_i): the log-linear pool of the models' log-probabilities."""
    z = sum(w * x.astype(np.float64) for w, x in zip(weights, logs, strict=True))
    return softmax(z, axis=1)


def _fit_pooling(logs: Sequence[np.ndarray], codes: np.ndarray) -> tuple[float, ...]:
    """Non-negative weights w minimising the log-loss of softmax(Σ w_i · logs[i]).

    The log-loss of a log-linear pool is convex in w, so L-BFGS-B finds the optimum; (1, 0, …)
    (the first model alone) is the start, so the pool only moves away from it when that helps.
    """
    rows = np.arange(len(codes))
    inputs = [x.astype(np.float64) for x in logs]
    true_means = np.array([x[rows, codes].mean() for x in inputs])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        logp = log_softmax(sum(wi * x for wi, x in zip(w, inputs, strict=True)), axis=1)
        p = np.exp(logp)
        grad = np.array([(p * x).sum(1).mean() for x in inputs]) - true_means
        return float(-logp[rows, codes].mean()), grad

    start = np.zeros(len(inputs))
    start[0] = 1.0
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0.0, 20.0)] * len(inputs))
    return tuple(float(w) for w in res.x)
