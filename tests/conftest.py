"""Fixtures several test files share: one small run of a chapter, computed once per session in
a temporary cache (the chapter module's tests and its figures module's tests read the same)."""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def theory_smoke(tmp_path_factory):
    """The theory chapter on one graph, two context noises and 100 steps (a few seconds)."""
    from ipta.theory import chapter
    from ipta.theory.config import Config

    cfg = Config.for_profile("smoke", n_graphs=1, steps=100, context_noise=(0.3, 0.02))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPTA_CACHE_DIR", str(tmp_path_factory.mktemp("theory-cache")))
        return chapter.run(cfg, progress=False)


@pytest.fixture(scope="session")
def probing_smoke(tmp_path_factory):
    """The probing chapter in the smoke profile, one seed, no throughput timing: (res, cfg)."""
    from ipta.probing import chapter

    cfg = chapter.Config.for_profile("smoke", seeds=(0,), throughput=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPTA_CACHE_DIR", str(tmp_path_factory.mktemp("probing-cache")))
        return chapter.run(cfg, progress=False), cfg


SIMULATIONS_SMOKE = dict(steps=20, chain_observed=(2, 6), er_graphs=("ER1",), er_latents=(4, 5),
                         seeds=(0, 1), hidden=16, embed_dim=8, n_fit=50, n_score=50)
"""Two chain sizes, one ER kind at two sizes, two seeds, 20 steps."""


@pytest.fixture(scope="session")
def simulations_smoke(tmp_path_factory):
    from ipta.simulations import chapter
    from ipta.simulations.config import Config

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPTA_CACHE_DIR", str(tmp_path_factory.mktemp("simulations-cache")))
        return chapter.run(Config.for_profile("smoke", **SIMULATIONS_SMOKE), progress=False)


@pytest.fixture
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")
