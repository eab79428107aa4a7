"""The SAE chapter's verdicts: every trained variant against every control, in every reading of
the concept metric, tested as :mod:`ipta.stats` says and corrected together.

For one system (an SAE, trained or not, or random features) and one reading, the concept metric
(appendix H.2) gives each concept the feature whose values correlate best with that concept's
probe logits over the pair words, distinct features for distinct concepts (Hungarian). Here the
assignment is made once, on all the words, and the hierarchical bootstrap then recomputes the
assigned correlations under resampled seeds, concepts and word pairs (the held-out reading
assigns on one half of the words and scores on the other, so its selection is outside the
score). The gain of a variant over a control is the mean over seeds and concepts of its scores
minus the control's; its p-value is the bootstrap's, and Holm's method corrects the whole table.

Controls (see :mod:`ipta.sae.controls`): the variant's own untrained copy (paired: the same
initialisation), random features at the top-k variants' sparsity (not paired: they share no
randomness with the run), and random features matched to the variant's own codes in scale and
sparsity: each feature takes exactly the values the trained feature takes on the pair words,
in the order of a random projection (:func:`quantile_match`). Untrained copies for seeds the
chapter never trains give null comparisons (one group of untrained seeds against another),
on which the test's false-positive share is measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipta import stats
from ipta.cache import call_spec, get_or_build_dir
from ipta.sae import metrics
from ipta.sae.config import Config
from ipta.sae.labels import AGAINST_TEXT, READING_LABELS, VARIANT_LABELS
from ipta.sae.runs import ConceptData, Run

READINGS = {"paper": "mean_pcc", "raw": "mean_pcc_raw", "spearman": "mean_pcc_spearman",
            "exp_std": "mean_pcc_exp_std", "heldout": "mean_pcc_heldout"}
"""Each reading of the metric tested, and the key of its score in a run's evaluation."""
AGAINST = ("untrained", "random_topk", "random_matched")
"""The controls every variant is tested against."""
HEAD_TO_HEAD = (("structured", "panneal"),)
"""Variant against variant, the paper's own claim (appendix H.3): the structured SAE above the
p-annealing SAE it adds its penalty to (the same seed: the same initialisation)."""
NULL_SEED_START = 1000
"""Untrained copies for null comparisons use seeds from here on (``cfg.null_seeds`` of them),
which the chapter never trains."""


@dataclass(frozen=True)
class Scores:
    """One system's assigned correlations per concept, observed (``K``) and under every
    bootstrap replicate (``B x K``), for one reading."""

    observed_K: np.ndarray
    boot_BK: np.ndarray


def resamplers(concepts: ConceptData, n_seeds: int, n_boot: int, seed: int = 0
               ) -> dict[str, stats.Resampler]:
    """Bootstrap draws for all words (``all``) and for the held-out reading's scored words
    (``heldout``); a word pair (two consecutive rows) is the resampling unit, within its
    concept."""
    pair_N = np.arange(len(concepts.concept_N)) // 2
    K = len(concepts.names)
    out = {"all": stats.Resampler(concepts.concept_N, pair_N, K, n_seeds, n_boot, seed)}
    if concepts.heldout is not None:
        rows = concepts.heldout.score_N
        out["heldout"] = stats.Resampler(concepts.concept_N[rows], pair_N[rows], K, n_seeds,
                                         n_boot, seed)
    return out


def system_scores(codes_NF: np.ndarray, concepts: ConceptData,
                  draws: dict[str, stats.Resampler]) -> dict[str, Scores]:
    """Every reading's :class:`Scores` of one system's codes on the pair words."""
    out = {}
    for reading in READINGS:
        if reading == "heldout":
            if concepts.heldout is None:
                continue
            held = concepts.heldout
            assigned = metrics.concept_match(held.logits_NK[held.fit_N], codes_NF[held.fit_N])
            y_NK = held.logits_NK[held.score_N]
            x_NK = metrics._exp(np.asarray(codes_NF, np.float64)[held.score_N]
                                [:, assigned.feature_K])
            weights = draws["heldout"].row_weights_BN
        else:
            y_NK, feats_NF = metrics.reading_inputs(concepts.logits_NK, codes_NF, reading)
            feature_K = metrics.assign(y_NK, feats_NF).feature_K
            x_NK, weights = feats_NF[:, feature_K], draws["all"].row_weights_BN
        observed, boot = stats.column_correlations(y_NK, x_NK, weights)
        out[reading] = Scores(observed, boot.astype(np.float32))
    return out


def quantile_match(random_NF: np.ndarray, target_NF: np.ndarray) -> np.ndarray:
    """Random features with each target feature's values: column j of the result holds exactly
    the values of ``target_NF[:, j]``, placed on the words in the order of ``random_NF[:, j]``
    (same sparsity and scale, no learned order)."""
    order_NF = np.argsort(np.argsort(random_NF, axis=0, kind="stable"), axis=0, kind="stable")
    return np.take_along_axis(np.sort(target_NF, axis=0), order_NF, axis=0)


def null_seeds(cfg: Config) -> tuple[int, ...]:
    """The seeds of the untrained copies that only the null comparisons use."""
    return tuple(range(NULL_SEED_START, NULL_SEED_START + cfg.null_seeds))


def _codes(sae, x_ND: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return sae.encode(metrics.float_tensor(x_ND)).numpy()


def _systems(cfg: Config, store, concepts: ConceptData, main: list[Run],
             draws) -> dict[tuple[str, str, int], dict[str, Scores]]:
    """Scores of every system the verdicts and the nulls compare: (kind, variant, seed) ->
    reading -> :class:`Scores`. Codes are made here, one system at a time; their scoring (the
    bootstrap's correlations, most of the time) runs over the machine's cores."""
    from ipta.parallel import parallel_map

    keys = [(kind, r.variant, r.seed) for r in main for kind in ("trained", "random_matched")]
    for seed in (*cfg.seeds, *null_seeds(cfg)):
        keys += [("untrained", variant, seed) for variant in dict.fromkeys(r.variant
                                                                           for r in main)]
        keys.append(("random_topk", "", seed))
    tasks = ((codes_NF, concepts, draws)
             for codes_NF in _system_codes(cfg, store, concepts, main, keys))
    return dict(zip(keys, parallel_map(_score_system, tasks)))


def _system_codes(cfg: Config, store, concepts: ConceptData, main: list[Run], keys):
    """Each system's codes on the pair words, in the order of ``keys``, made when asked for."""
    from ipta.sae.controls import normalised_units, random_codes, untrained_sae

    reps = concepts.reps_ND
    trained = {}
    for kind, variant, seed in keys:
        if kind == "trained":
            run = next(r for r in main if (r.variant, r.seed) == (variant, seed))
            trained[variant, seed] = _codes(run.sae(), reps)
            yield trained[variant, seed]
        elif kind == "random_matched":
            codes_NF = trained.pop((variant, seed))
            xn_ND = _normalised(normalised_units(cfg, seed, store), reps)
            yield quantile_match(random_codes(xn_ND, codes_NF.shape[1], seed), codes_NF)
        elif kind == "untrained":
            yield _codes(untrained_sae(cfg, variant, seed, store), reps)
        else:
            xn_ND = _normalised(normalised_units(cfg, seed, store), reps)
            yield random_codes(xn_ND, cfg.n_features, seed, cfg.k)


def _score_system(task) -> dict[str, Scores]:
    return system_scores(*task)


def _normalised(sae, x_ND: np.ndarray) -> np.ndarray:
    from ipta.sae.controls import _normalised as normalised

    return normalised(sae, x_ND)


def _stack(systems, kind: str, variant: str, seeds, reading: str
           ) -> tuple[np.ndarray, np.ndarray]:
    chosen = [systems[kind, variant, s][reading] for s in seeds]
    return (np.stack([c.observed_K for c in chosen]), np.stack([c.boot_BK for c in chosen]))


def _comparison(systems, draws, a: tuple[str, str, tuple], b: tuple[str, str, tuple],
                reading: str, paired: bool, resample_seeds: bool = True) -> stats.Comparison:
    obs_a, boot_a = _stack(systems, a[0], a[1], a[2], reading)
    obs_b, boot_b = _stack(systems, b[0], b[1], b[2], reading)
    resampler = draws["heldout" if reading == "heldout" else "all"]
    return stats.compare(obs_a, boot_a, obs_b, boot_b, resampler, paired, resample_seeds)


def compute(cfg: Config, store, concepts: ConceptData, main: list[Run]) -> dict[str, Any]:
    """The verdict table, the null comparisons and the power figures (see the module doc)."""
    seeds = tuple(sorted({r.seed for r in main}))
    draws = resamplers(concepts, max(len(seeds), 3), cfg.n_boot)
    systems = _systems(cfg, store, concepts, main, draws)
    variants = list(dict.fromkeys(r.variant for r in main))
    readings = [r for r in READINGS if r != "heldout" or concepts.heldout is not None]
    rows = []
    for variant in variants:
        for against in AGAINST:
            for reading in readings:
                other = ("random_topk", "", seeds) if against == "random_topk" else \
                    (against, variant, seeds)
                pair = (systems, draws, ("trained", variant, seeds), other, reading,
                        against != "random_topk")
                c = _comparison(*pair)
                fixed_seeds = _comparison(*pair, resample_seeds=False)
                rows.append({"variant": variant, "against": against, "reading": reading,
                             **asdict(c), "sd_concepts_words": fixed_seeds.sd})
    for variant, other in HEAD_TO_HEAD:
        if variant in variants and other in variants:
            for reading in readings:
                pair = (systems, draws, ("trained", variant, seeds), ("trained", other, seeds),
                        reading, True)
                c = _comparison(*pair)
                rows.append({"variant": variant, "against": f"trained_{other}",
                             "reading": reading, **asdict(c),
                             "sd_concepts_words": _comparison(*pair, resample_seeds=False).sd})
    for row, adjusted in zip(rows, stats.holm([r["p"] for r in rows])):
        row["p_holm"] = float(adjusted)
        row["beats"] = bool(adjusted <= stats.LEVEL and row["gain"] > 0)
    nulls_seeds = null_seeds(cfg)
    groups = [nulls_seeds[i:i + len(seeds)] for i in range(0, len(nulls_seeds), len(seeds))]
    groups = [g for g in groups if len(g) == len(seeds)]
    nulls = []
    for i, first in enumerate(groups):
        for second in groups[i + 1:]:
            for reading in readings:
                for variant in variants:
                    c = _comparison(systems, draws, ("untrained", variant, first),
                                    ("untrained", variant, second), reading, paired=True)
                    nulls.append({"kind": "untrained", "variant": variant, "reading": reading,
                                  "p": c.p, "gain": c.gain})
                c = _comparison(systems, draws, ("random_topk", "", first),
                                ("random_topk", "", second), reading, paired=False)
                nulls.append({"kind": "random_topk", "variant": "", "reading": reading,
                              "p": c.p, "gain": c.gain})
    share, low, high = stats.false_positive_share([n["p"] for n in nulls])
    matched = {v: {reading: float(np.mean([systems["random_matched", v, s][reading]
                                           .observed_K.mean() for s in seeds]))
                   for reading in readings} for v in variants}
    return {"rows": rows, "nulls": nulls, "null_share": share, "null_low": low,
            "null_high": high, "seeds": list(seeds), "n_boot": cfg.n_boot,
            "power": power(rows, len(seeds)), "matched": matched}


def power(rows: list[dict[str, Any]], n_seeds: int, target: float = 0.8,
          seed_counts: tuple[int, ...] = (1, 2, 3, 4, 6, 10)) -> dict[str, Any]:
    """The gain the table can detect: the smallest gain that clears Holm's first threshold
    (level / number of rows) with probability ``target``, normal approximation, at the median
    standard error of the table's rows. The standard error splits into what concepts and words
    make (seeds held fixed) and what seeds add, which shrinks as 1 / seeds; so the same figure
    for other numbers of seeds shows what more seeds would buy."""
    from scipy.stats import norm

    if not rows:
        return {"median_sd": float("nan"), "detectable": float("nan"), "n_verdicts": 0,
                "power": target, "by_seeds": {}}
    z = norm.ppf(1 - stats.LEVEL / len(rows)) + norm.ppf(target)
    full = np.array([r["sd"] for r in rows])
    fixed = np.minimum(np.array([r["sd_concepts_words"] for r in rows]), full)
    seeds_part = full**2 - fixed**2

    def detectable(s: int) -> float:
        return float(z * np.median(np.sqrt(fixed**2 + seeds_part * n_seeds / s)))

    return {"median_sd": float(np.median(full)), "detectable": detectable(n_seeds),
            "n_verdicts": len(rows), "power": target,
            "seed_share": float(np.median(seeds_part / np.maximum(full**2, 1e-30))),
            "by_seeds": {str(s): detectable(s) for s in seed_counts}}


def verdicts(cfg: Config, store, concepts: ConceptData, main: list[Run]) -> dict[str, Any]:
    """:func:`compute` through the cache: keyed by every argument (the trained runs by their
    content-addressed folders) and this module's code."""
    spec = call_spec(verdicts, locals(), replace={
        "cfg": cfg.cache_spec(exclude=("alphas", "matched_l0", "planted_steps")),
        "store": store.directory.name, "main": sorted(str(r.directory.name) for r in main)})

    def build(tmp: Path) -> None:
        (tmp / "verdicts.json").write_text(json.dumps(compute(cfg, store, concepts, main)))

    path = get_or_build_dir("sae_verdicts", spec, build, code=("ipta.sae.verdicts",))
    return json.loads((path / "verdicts.json").read_text())


def summary(verdicts: dict[str, Any]) -> dict[str, list[str]]:
    """Which (variant, control) pairs beat in every reading, in some, and in none."""
    out: dict[str, list[str]] = {"every": [], "some": [], "none": []}
    pairs = dict.fromkeys((r["variant"], r["against"]) for r in verdicts["rows"])
    for variant, against in pairs:
        mine = [r for r in verdicts["rows"] if (r["variant"], r["against"]) == (variant, against)]
        held = [READING_LABELS[r["reading"]] for r in mine if r["beats"]]
        name = f"{VARIANT_LABELS[variant]} over {AGAINST_TEXT[against]}"
        if len(held) == len(mine):
            out["every"].append(name)
        elif held:
            out["some"].append(f"{name} (only {', '.join(held)})")
        else:
            out["none"].append(name)
    return out
