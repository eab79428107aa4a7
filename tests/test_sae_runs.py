"""Specification of ipta.sae.runs: the concept data of appendix H.2 and what a run's key holds."""

import pytest

from ipta.lm import models
from ipta.lm.models import LazyModel
from ipta.sae import runs
from ipta.sae.config import Config as SAEConfig

SMOKE = dict(model="tiny:llama", concept_source="embedded", n_tokens=600, val_tokens=128,
             max_pairs_per_concept=3)


@pytest.fixture
def load_count(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    calls = []
    real = models.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    return calls


def test_extraction_and_word_representations_share_one_model_load(load_count):
    cfg = SAEConfig.for_profile("smoke", **SMOKE)
    model = LazyModel(cfg.model)
    store = runs.activations(cfg, progress=False, loaded=model)
    data = runs.concept_data(cfg, progress=False, loaded=model)
    assert len(load_count) == 1
    assert store.n_tokens == cfg.n_tokens and store.d_model == data.reps_ND.shape[1]
    warm = LazyModel(cfg.model)
    runs.activations(cfg, progress=False, loaded=warm)
    runs.concept_data(cfg, progress=False, loaded=warm)
    assert len(load_count) == 1 and not warm.is_loaded  # a warm cache loads nothing


def test_concept_logits_are_each_probes_logits_on_every_word(load_count):
    """Column k of logits_NK is positive on most of concept k's base words and negative on its
    targets (the probes are fitted on exactly those rows)."""
    cfg = SAEConfig.for_profile("smoke", **SMOKE)
    data = runs.concept_data(cfg, progress=False)
    assert data.logits_NK.shape == (len(data.reps_ND), len(data.names))
    for k in range(len(data.names)):
        rows = data.concept_N == k
        sign_ok = (data.logits_NK[rows, k] > 0) == (data.label_N[rows] == 1)
        assert sign_ok.mean() >= 0.5


def test_a_runs_key_ignores_the_sweep_axes_and_keeps_every_other_field():
    cfg = SAEConfig.for_profile("smoke")
    spec = cfg.cache_spec(exclude=runs.SWEEP_FIELDS)
    assert not set(runs.SWEEP_FIELDS) & set(spec)
    assert {"steps", "lr", "n_features", "pcc_threshold", "eval_every"} <= set(spec)
    assert "device" not in spec and "checkpoint_every" not in spec


def _train_all(cfg, root, monkeypatch, workers):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(root))
    monkeypatch.setattr(runs, "training_workers", lambda cfg: workers)
    store, concepts = runs.chapter_inputs(cfg, progress=False)
    return runs.train_all(cfg, store, concepts, progress=False)


def test_runs_trained_in_worker_processes_are_the_runs_trained_here(tmp_path, monkeypatch):
    """Two workers (one thread each) give the same runs, in the same order and with the same
    ablation reuse, as one process: the same keys (cache folder names) and, to float rounding,
    the same evaluations; the workers wrote into the cache named when they were called, not
    into the one they started under."""
    cfg = SAEConfig.for_profile("smoke", **SMOKE, seeds=(0, 1), alphas=(0.0, 0.3),
                                ablation_readings=("structured",))
    here = _train_all(cfg, tmp_path / "here", monkeypatch, 1)
    _train_all(cfg, tmp_path / "first", monkeypatch, 2)  # workers start under this cache
    there = _train_all(cfg, tmp_path / "there", monkeypatch, 2)
    for mine, theirs in zip(here, there, strict=True):
        assert [(r.variant, r.seed, r.alpha, r.k) for r in mine] == \
               [(r.variant, r.seed, r.alpha, r.k) for r in theirs]
        assert [r.directory.name for r in mine] == [r.directory.name for r in theirs]
        assert all(r.directory.parent.parent == tmp_path / "there" for r in theirs)
        for a, b in zip(mine, theirs):
            assert b.final["val_mse"] == pytest.approx(a.final["val_mse"], rel=1e-3)
            assert b.final["mean_pcc"] == pytest.approx(a.final["mean_pcc"], abs=1e-3)
    assert len(here[1]) == 2 * 2 and len(here[2]) == 2 * 2  # matched: 2 variants x 2 seeds


def test_a_variant_registered_outside_the_package_trains_in_this_process(monkeypatch):
    from ipta.sae.mechanisms import MECHANISMS

    class Elsewhere(MECHANISMS["topk"]):
        pass

    monkeypatch.setitem(MECHANISMS, "elsewhere", Elsewhere)
    import ipta.parallel

    monkeypatch.setattr(ipta.parallel, "cores", lambda: 2)
    assert runs.training_workers(SAEConfig.for_profile("smoke", device="cpu")) == 2
    cfg = SAEConfig.for_profile("smoke", device="cpu", variants=("topk", "elsewhere"))
    assert runs.training_workers(cfg) == 1


@pytest.mark.parametrize("curves", ["paper", "all"])
def test_validation_points_carry_the_readings_asked_for_and_the_final_one_every_reading(
        load_count, curves):
    """Figures 6 and 7 draw the paper's reading over training: by default a validation point
    computes only that one (and reconstruction, sparsity); ``curve_readings='all'`` (the long
    setting) adds every other reading and the held-out view. The final evaluation has all."""
    from ipta.sae.metrics import METRIC_VARIANTS

    cfg = SAEConfig.for_profile("smoke", **SMOKE, curve_readings=curves)
    store, concepts = runs.chapter_inputs(cfg, progress=False)
    run = runs.train_run(cfg, "topk", 0, store, concepts, progress=False)
    others = {f"mean_pcc_{v}" for v in METRIC_VARIANTS if v != "paper"} | {"mean_pcc_heldout"}
    assert len(run.history) == cfg.steps // cfg.eval_every
    for row in run.history:
        assert {"mean_pcc", "coverage", "val_mse", "pairs_mse", "val_l0"} <= set(row)
        assert (others <= set(row)) if curves == "all" else not others & set(row)
    assert others <= set(run.final)


def test_the_word_pairs_are_read_once_per_distinct_word_as_the_probing_chapter_reads_them(
        load_count, monkeypatch):
    """The SAE chapter's pair representations are the probing chapter's cache entry (the same
    model, layer and distinct words in the same order): once probing has run, the SAE
    chapter computes none, and each word's row is its distinct word's."""
    from ipta.lm import activations
    from ipta.lm.concepts import load_concept_set
    from ipta.probing.chapter import pair_representations
    from ipta.probing.config import Config as ProbingConfig

    cfg = SAEConfig.for_profile("smoke", **dict(SMOKE, max_pairs_per_concept=0))
    concepts = load_concept_set("embedded")
    pair_representations(concepts, cfg.model, ProbingConfig.for_profile("smoke"),
                         progress=False)

    def no_forward_pass(*args, **kwargs):
        raise AssertionError("the SAE chapter recomputed word representations")

    monkeypatch.setattr(activations, "word_representations", no_forward_pass)
    data = runs.concept_data(cfg, progress=False)
    words = [w for n in concepts.names for pair in concepts.pairs[n] for w in pair]
    first = {}
    for i, w in enumerate(words):
        first.setdefault(w, i)
        assert (data.reps_ND[i] == data.reps_ND[first[w]]).all()
    assert len(words) == len(data.reps_ND)
