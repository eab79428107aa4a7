"""Specification of ipta.sae.chapter on a Result built by hand (no model, no training): what it
describes, the tables' rows and columns, and the paired gain's pairing by seed."""

from pathlib import Path

import numpy as np
import pytest

from ipta.sae import chapter
from ipta.sae.chapter import Result
from ipta.sae.config import Config
from ipta.sae.runs import ConceptData, Run
from ipta.stats import Difference

NAMES = ("verb-3pSg", "noun-plural", "male-female")


def _final(pcc, l0=8.0):
    """A run's final evaluation: the concept metric ``pcc`` per concept and a few numbers."""
    pcc_K = np.array(pcc)
    return {"pcc_K": pcc_K, "mean_pcc": float(pcc_K.mean()),
            "coverage": float((pcc_K > 0.5).mean()), "val_l0": l0, "pairs_mse": 0.1,
            "val_mse": 0.2}


def _run(variant, seed, pcc, kind="trained", k=8, alpha=0.0, folder=None):
    return Run(variant, seed, alpha, k, [], _final(pcc), folder, kind=kind)


@pytest.fixture(scope="module")
def res():
    concepts = ConceptData(NAMES, "embedded", np.zeros((12, 4)), np.zeros((12, 3)),
                           np.repeat(np.arange(3), 4), np.tile([1, 0], 6))
    main = [_run("topk", 0, [0.6, 0.4, 0.7], folder=Path("/c/topk0")),
            _run("topk", 1, [0.8, 0.2, 0.5], folder=Path("/c/topk1")),
            _run("panneal", 0, [0.9, 0.6, 0.3], k=0, folder=Path("/c/pa0")),
            _run("panneal", 1, [0.7, 0.8, 0.6], k=0, folder=Path("/c/pa1"))]
    matched = [_run("topk", 0, [0.5, 0.5, 0.5], k=3, folder=Path("/c/topk0k3"))]
    ablation = [_run("structured", 0, [0.4, 0.4, 0.4], k=0, alpha=0.1, folder=Path("/c/s0")),
                _run("panneal", 0, [0.9, 0.6, 0.3], k=0, folder=Path("/c/pa0"))]  # alpha = 0
    controls = [_run("topk", 0, [0.3, 0.3, 0.3], kind="untrained"),
                _run("topk", 1, [0.1, 0.2, 0.3], kind="untrained"),
                _run("panneal", 0, [0.2, 0.2, 0.2], kind="untrained"),  # seed 1 missing
                _run("random_topk", 0, [0.1, 0.1, 0.1], kind="random_topk"),
                _run("random_topk", 1, [0.3, 0.3, 0.3], kind="random_topk")]
    return Result(main, matched, ablation, concepts, 0.5, controls)


def test_describe_counts_the_concepts_and_words_and_names_the_pairs_source(res):
    assert chapter.describe(res) == "3 concepts, 12 words, pairs from: embedded"


def test_the_paired_gain_pairs_each_trained_seed_with_its_own_control(res):
    def pcc(runs, variant, kind="trained"):
        return {r.seed: r.final["mean_pcc"] for r in runs if r.variant == variant
                and r.kind == kind}

    trained = pcc(res.main, "topk")
    assert chapter.paired_gain(res, "topk") == Difference.paired(
        trained, pcc(res.controls, "topk", "untrained"))
    panneal = chapter.paired_gain(res, "panneal")
    assert panneal.n == 1, "panneal's seed 1 has no untrained copy: it is left out, not reused"
    random = chapter.paired_gain(res, "topk", against="random_topk")
    assert random == Difference.paired(trained, pcc(res.controls, "random_topk", "random_topk"))
    assert random.n == 2


def test_the_run_index_lists_each_trained_folder_once_with_alpha_only_where_it_applies(res):
    cfg = Config.for_profile("smoke", concept_source="embedded")
    rows = chapter.run_index_rows(res, cfg)
    assert [(r["runs"], r["folder"]) for r in rows] == [
        ("main", "/c/topk0"), ("main", "/c/topk1"), ("main", "/c/pa0"), ("main", "/c/pa1"),
        ("matched L0", "/c/topk0k3"), ("alpha ablation", "/c/s0")]
    assert [r["alpha"] for r in rows] == [None] * 5 + [0.1]
    assert {(r["model"], r["layer"]) for r in rows} == {(cfg.model, cfg.layer)}
    exports = list(chapter.table_runs(res, cfg)["export"])
    assert exports[0] == "ipta export-sae topk:0:k8 OUT" and exports[-1].endswith(":a0.1 OUT")
