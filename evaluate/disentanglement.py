"""Disentanglement metrics over fixed codes and factors, following google-research/disentanglement_lib.

In: `codes` float [N, L] (encoder means) and `factors` int [N, F] (discrete factor classes; continuous
angles go through `discretize_factors` first). Out: plain floats. numpy + scikit-learn only.

The definitions are disentanglement_lib's (Locatello et al. 2019), with the defaults noted at each
function. What differs is where the points come from: disentanglement_lib samples fresh observations
from a generator (10,000 training, 5,000 test points); we score one fixed, rendered i.i.d. test set
(hundreds of images). So:
- points are split once, by a seeded permutation, 2:1 into a training and a test part (the library's
  10,000 : 5,000 ratio); MIG uses every point, as it has no test part;
- FactorVAE and BetaVAE batches "with one factor fixed" are drawn with replacement from the points of
  one part whose class of that factor matches an anchor point's (the library fixes the exact value;
  our value is fixed up to its bin). Their vote / feature counts keep the library's defaults
  (10,000 train, 5,000 eval), drawn from the training and test part respectively.
Every random choice flows from `seed`, so the same codes give the same numbers.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.svm import LinearSVC

log = logging.getLogger(__name__)

CODE_BINS = 20
"""Equal-width bins per code for the mutual-information metrics (disentanglement_lib's default)."""
BATCH = 64
"""Points per fixed-factor batch (FactorVAE) or pairs per feature (BetaVAE), the library's default."""
CHUNK = 1024
"""Votes / features computed per vectorised chunk (bounds memory to CHUNK x BATCH x L floats)."""


@dataclass(frozen=True)
class MetricSizes:
    """How many votes / features FactorVAE and BetaVAE draw (disentanglement_lib defaults)."""

    train: int = 10_000
    eval: int = 5_000
    batch: int = BATCH
    test_fraction: float = 1 / 3
    """Share of the points held out as the test part (10,000 : 5,000 in the library)."""


# ------------------------------------------------------------------------------------- helpers


def discretize_factors(values: np.ndarray, bins: int, ranges: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """Continuous factors [N, F] -> classes int [N, F] in 0..bins-1, by `bins` equal-width bins over
    each factor's range (the configured range when given, so every model is binned alike; else the
    data's min..max)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        lo, hi = ranges[j] if ranges is not None else (values[:, j].min(), values[:, j].max())
        if hi <= lo:
            continue  # a factor that never varies is one class
        cls = np.floor((values[:, j] - lo) / (hi - lo) * bins).astype(np.int64)
        out[:, j] = np.clip(cls, 0, bins - 1)
    return out


def histogram_discretize(codes: np.ndarray, bins: int = CODE_BINS) -> np.ndarray:
    """disentanglement_lib's `_histogram_discretize`: per code, digitize by np.histogram edges."""
    return np.stack([np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in np.asarray(codes).T], axis=1)


def mutual_information(codes_discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """[L, F] discrete mutual information (nats) between every code and every factor."""
    return np.array([[mutual_info_score(factors[:, j], codes_discrete[:, i]) for j in range(factors.shape[1])]
                     for i in range(codes_discrete.shape[1])])


def factor_entropy(factors: np.ndarray) -> np.ndarray:
    return np.array([mutual_info_score(f, f) for f in factors.T])


def split_points(n: int, seed: int, test_fraction: float = 1 / 3) -> tuple[np.ndarray, np.ndarray]:
    """Seeded 2:1 split of point indices into (train, test)."""
    order = np.random.default_rng([seed, 1]).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# ------------------------------------------------------------------------------------- metrics


def mig(codes: np.ndarray, factors: np.ndarray) -> float:
    """Mutual Information Gap: per factor, (largest - second largest MI over codes) / H(factor), mean
    over factors. It rewards each factor being captured by one code (a code capturing two factors is
    not penalised: that is what DCI disentanglement and modularity measure)."""
    m = mutual_information(histogram_discretize(codes), factors)
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(m.shape[1])
    return float(np.mean((top[0] - second) / factor_entropy(factors)))


def dci(codes: np.ndarray, factors: np.ndarray, seed: int = 0, test_fraction: float = 1 / 3) -> dict[str, float]:
    """DCI (Eastwood & Williams 2018): importances of a GradientBoostingClassifier (sklearn defaults;
    random_state fixed for reproducibility) per factor; disentanglement, completeness, and
    informativeness as mean train/test accuracy."""
    tr, te = split_points(len(codes), seed, test_fraction)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    acc_train, acc_test = [], []
    for j in range(factors.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(codes[tr], factors[tr, j])
        importance[:, j] = np.abs(model.feature_importances_)
        acc_train.append(np.mean(model.predict(codes[tr]) == factors[tr, j]))
        acc_test.append(np.mean(model.predict(codes[te]) == factors[te, j]))
    return {
        "disentanglement": dci_disentanglement(importance),
        "completeness": dci_completeness(importance),
        "informativeness_train": float(np.mean(acc_train)),
        "informativeness_test": float(np.mean(acc_test)),
    }


def dci_disentanglement(importance: np.ndarray) -> float:
    """Sum over codes of (1 - entropy of the code's importance over factors, base F) x its weight."""
    return _concentration(importance.T)


def dci_completeness(importance: np.ndarray) -> float:
    """The transpose: per factor, 1 - entropy of its importance over codes (base L), weighted."""
    return _concentration(importance)


def _concentration(weights: np.ndarray) -> float:
    """Columns' 1 - normalised entropy over the rows, weighted by the columns' share of the total.
    With one row the entropy's base would be 1 (log 1 = 0): all of a column's weight is on that row,
    which is full concentration, so the score is 1 rather than the formula's 0 / 0."""
    if weights.shape[0] == 1:
        return 1.0
    per_column = 1.0 - scipy.stats.entropy(weights + 1e-11, base=weights.shape[0])
    share = weights if weights.sum() > 0 else np.ones_like(weights)
    return float(np.sum(per_column * share.sum(axis=0) / share.sum()))


def sap(codes: np.ndarray, factors: np.ndarray, seed: int = 0, test_fraction: float = 1 / 3) -> float:
    """SAP (discrete factors): test accuracy of LinearSVC(C=0.01, balanced) on each single code, per
    factor the top minus the second accuracy, mean over factors."""
    tr, te = split_points(len(codes), seed, test_fraction)
    score = np.zeros((codes.shape[1], factors.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(codes.shape[1]):
            for j in range(factors.shape[1]):
                svc = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                svc.fit(codes[tr, i:i + 1], factors[tr, j])
                score[i, j] = np.mean(svc.predict(codes[te, i:i + 1]) == factors[te, j])
    top = np.sort(score, axis=0)
    return float(np.mean(top[-1] - top[-2])) if len(top) > 1 else 0.0


def modularity_explicitness(codes: np.ndarray, factors: np.ndarray, seed: int = 0,
                            test_fraction: float = 1 / 3) -> dict[str, float]:
    """Ridgeway & Zemel 2018: modularity from the 20-bin mutual information of the training part;
    explicitness as the ROC-AUC of a LogisticRegression on standardised codes, mean over factors."""
    tr, te = split_points(len(codes), seed, test_fraction)
    m = np.square(mutual_information(histogram_discretize(codes[tr]), factors[tr]))
    top = m.max(axis=1)
    if m.shape[1] == 1:  # one factor: every code's information is on it (the formula is 0 / 0)
        mod = np.ones(len(m))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            mod = 1.0 - (m.sum(axis=1) - top) / (top * (m.shape[1] - 1.0))
    mod[top == 0] = 0.0
    mean, std = codes[tr].mean(axis=0), codes[tr].std(axis=0)
    std[std == 0] = 1.0
    x_tr, x_te = (codes[tr] - mean) / std, (codes[te] - mean) / std
    auc_train, auc_test = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for j in range(factors.shape[1]):
            clf = LogisticRegression().fit(x_tr, factors[tr, j])
            auc_train.append(_macro_auc(clf, x_tr, factors[tr, j]))
            auc_test.append(_macro_auc(clf, x_te, factors[te, j]))
    return {"modularity": float(np.mean(mod)), "explicitness_train": float(np.mean(auc_train)),
            "explicitness_test": float(np.mean(auc_test))}


def _macro_auc(clf: LogisticRegression, x: np.ndarray, y: np.ndarray) -> float:
    """One-vs-rest ROC-AUC averaged over the classes (the library's MultiLabelBinarizer +
    roc_auc_score), skipping classes absent from `y`, which a small test part can miss."""
    proba = clf.predict_proba(x)
    aucs = [roc_auc_score(y == c, proba[:, k]) for k, c in enumerate(clf.classes_) if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def factor_vae(codes: np.ndarray, factors: np.ndarray, seed: int = 0, sizes: MetricSizes = MetricSizes(),
               prune_below: float = 0.05) -> dict[str, float]:
    """FactorVAE score (Kim & Mnih 2018): in a batch with one factor fixed, codes are divided by their
    global variance (ddof=1; codes whose global std < `prune_below` are pruned, as the library's
    default config) and the least-variance code votes for the fixed factor; a majority-vote classifier
    from the training votes is scored on the evaluation votes."""
    global_var = np.var(codes, axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_var) >= prune_below)
    if active.size == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_codes": 0}
    rng = np.random.default_rng([seed, 2])
    tr, te = split_points(len(codes), seed, sizes.test_fraction)

    def votes(part: np.ndarray, count: int) -> np.ndarray:
        table = np.zeros((factors.shape[1], codes.shape[1]), dtype=np.int64)
        k, batches = _fixed_factor_batches(factors, part, count, sizes.batch, rng)
        for start in range(0, count, CHUNK):
            local = np.var(codes[batches[start:start + CHUNK]][:, :, active], axis=1, ddof=1)
            np.add.at(table, (k[start:start + CHUNK], active[np.argmin(local / global_var[active], axis=1)]), 1)
        return table

    train_votes, eval_votes = votes(tr, sizes.train), votes(te, sizes.eval)
    classifier = np.argmax(train_votes, axis=0)  # code -> the factor it votes for most
    cols = np.arange(codes.shape[1])
    return {"train_accuracy": float(train_votes[classifier, cols].sum() / train_votes.sum()),
            "eval_accuracy": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
            "active_codes": int(active.size)}


def beta_vae(codes: np.ndarray, factors: np.ndarray, seed: int = 0, sizes: MetricSizes = MetricSizes()) -> dict[str, float]:
    """BetaVAE score (Higgins et al. 2017): feature = mean |z1 - z2| over `batch` pairs that share one
    factor; a LogisticRegression (sklearn defaults) predicts which factor was shared."""
    rng = np.random.default_rng([seed, 3])
    tr, te = split_points(len(codes), seed, sizes.test_fraction)

    def features(part: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        k, first, second = _shared_factor_pairs(factors, part, count, sizes.batch, rng)
        x = np.concatenate([np.mean(np.abs(codes[first[i:i + CHUNK]] - codes[second[i:i + CHUNK]]), axis=1)
                            for i in range(0, count, CHUNK)])
        return x, k

    x_tr, y_tr = features(tr, sizes.train)
    x_ev, y_ev = features(te, sizes.eval)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(random_state=seed).fit(x_tr, y_tr)
    return {"train_accuracy": float(np.mean(model.predict(x_tr) == y_tr)),
            "eval_accuracy": float(np.mean(model.predict(x_ev) == y_ev))}


class _SameClass:
    """Draws, for given points, random points of `part` in the same class of factor k (vectorised)."""

    def __init__(self, factors: np.ndarray, part: np.ndarray):
        self.factors = factors
        self.blocks = []
        for j in range(factors.shape[1]):
            order = part[np.argsort(factors[part, j], kind="stable")]
            classes, starts, counts = np.unique(factors[order, j], return_index=True, return_counts=True)
            self.blocks.append((order, classes, starts, counts))

    def draw(self, k: int, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        order, classes, starts, counts = self.blocks[k]
        c = np.searchsorted(classes, self.factors[points, k])
        return order[starts[c] + (rng.random(len(points)) * counts[c]).astype(np.int64)]


def _fixed_factor_batches(factors, part, count, batch, rng) -> tuple[np.ndarray, np.ndarray]:
    """(factor k [count], indices [count, batch]): each row shares k's class with a random anchor of `part`."""
    same = _SameClass(factors, part)
    k = rng.integers(factors.shape[1], size=count)
    anchors = part[rng.integers(len(part), size=count)]
    rows = np.empty((count, batch), dtype=np.int64)
    for j in range(factors.shape[1]):
        sel = np.flatnonzero(k == j)
        rows[sel] = same.draw(j, np.repeat(anchors[sel], batch), rng).reshape(len(sel), batch)
    return k, rows


def _shared_factor_pairs(factors, part, count, batch, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(factor k [count], first [count, batch], second [count, batch]): random points of `part`, each
    paired with a random point of `part` in the same class of k."""
    same = _SameClass(factors, part)
    k = rng.integers(factors.shape[1], size=count)
    first = part[rng.integers(len(part), size=(count, batch))]
    second = np.empty_like(first)
    for j in range(factors.shape[1]):
        sel = np.flatnonzero(k == j)
        second[sel] = same.draw(j, first[sel].ravel(), rng).reshape(len(sel), batch)
    return k, first, second


# ------------------------------------------------------------------------------------- all


def varying_factors(factors: np.ndarray, seed: int = 0, test_fraction: float = 1 / 3) -> list[int]:
    """Indices of the factors the metrics can score: more than one class among the training part's points."""
    factors = np.asarray(factors)
    train = split_points(len(factors), seed, test_fraction)[0] if len(factors) >= 6 else np.arange(len(factors))
    return [j for j in range(factors.shape[1]) if len(np.unique(factors[train, j])) > 1]


def all_metrics(codes: np.ndarray, factors: np.ndarray, seed: int = 0, sizes: MetricSizes = MetricSizes()) -> dict:
    """Every metric on one set of codes [N, L] and discrete factors [N, F]. Factors with a single
    class carry no information and are left out (their index list is recorded), as are those with one
    class in the training part (no classifier can be fitted on it; a small set with few meshes)."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.int64)
    used = varying_factors(factors, seed, sizes.test_fraction)
    if not used or len(codes) < 6:
        raise ValueError(f"disentanglement metrics need >= 6 points and a varying factor; got {len(codes)} points")
    f = factors[:, used]
    single = len(used) == 1
    if single:
        log.warning("only one factor varies in the iid set: DCI disentanglement, modularity, FactorVAE and "
                    "BetaVAE are 1 by definition (there is no other factor to confuse it with); vary two or more")
    # Which factor was fixed or shared has one possible answer when one factor varies: accuracy 1.
    trivially = {"train_accuracy": 1.0, "eval_accuracy": 1.0}
    return {
        "points": int(len(codes)),
        "factors_used": used,
        **({"single_factor": True} if single else {}),
        "mig": mig(codes, f),
        "dci": dci(codes, f, seed, sizes.test_fraction),
        "sap": sap(codes, f, seed, sizes.test_fraction),
        "factor_vae": {**trivially, "active_codes": codes.shape[1]} if single else factor_vae(codes, f, seed, sizes),
        "beta_vae": trivially if single else beta_vae(codes, f, seed, sizes),
        **modularity_explicitness(codes, f, seed, sizes.test_fraction),
    }
