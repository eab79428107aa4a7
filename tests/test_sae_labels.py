"""Specification of ipta.sae.labels: a run's name in tables is its variant's label, or the
control it is; values are grouped by that name in seed order."""

import numpy as np
import pytest

from ipta.sae.controls import CONTROL_LABELS
from ipta.sae.labels import VARIANT_LABELS, by_label, label, uses
from ipta.sae.mechanisms import MECHANISMS
from ipta.sae.runs import Run


def _run(variant, seed=0, kind="trained", **final):
    return Run(variant, seed, 0.0, 8, [], final, None, kind=kind)


def test_every_registered_variant_is_labelled_by_its_mechanism_and_no_other_name_is():
    assert list(VARIANT_LABELS) == list(MECHANISMS) and len(VARIANT_LABELS) == len(MECHANISMS)
    assert all(VARIANT_LABELS[v] == MECHANISMS[v].label for v in MECHANISMS)
    assert VARIANT_LABELS["topk"] == "top-k"
    with pytest.raises(KeyError):
        VARIANT_LABELS["relu"]


@pytest.mark.parametrize("run,name", [
    (_run("batchtopk"), "batch-top-k"),
    (_run("batchtopk", kind="untrained"), "untrained batch-top-k"),
    (_run("random_topk", kind="random_topk"), CONTROL_LABELS["random_topk"]),
    (_run("ceiling", kind="ceiling"), "ceiling: probe logits"),
])
def test_a_run_is_named_by_its_variant_or_by_the_control_it_is(run, name):
    assert label(run) == name


@pytest.mark.parametrize("variant,knob,used", [
    ("topk", "k", True), ("batchtopk", "k", True), ("panneal", "k", False),
    ("structured", "alpha", True), ("adapter", "alpha", True), ("topk", "alpha", False),
    ("random", "k", False), ("model_dims", "alpha", False),
])
def test_a_knob_is_used_only_by_the_variants_it_sets(variant, knob, used):
    kind = "trained" if variant in MECHANISMS else variant
    assert uses(_run(variant, kind=kind), knob) is used


def test_by_label_groups_values_by_name_in_seed_order_with_nan_where_missing():
    runs = [_run("topk", seed=2, mean_pcc=0.3), _run("topk", seed=0, mean_pcc=0.1),
            _run("topk", seed=1), _run("topk", seed=0, kind="untrained", mean_pcc=0.05)]
    grouped = by_label(runs, "mean_pcc")
    assert list(grouped) == ["top-k", "untrained top-k"]
    np.testing.assert_array_equal(grouped["top-k"], [0.1, np.nan, 0.3])
    np.testing.assert_array_equal(grouped["untrained top-k"], [0.05])
