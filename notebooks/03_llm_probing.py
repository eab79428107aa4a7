# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Probing real language models
#
# The theory predicts that, in a model trained to predict the next token, a concept leaves two
# linear traces in the final representation $f(x)$: a **direction** $a_i$, the average change of
# $f$ between words that differ only in concept $i$ (e.g. *walk* vs *walked*), and a **probe**
# $w_i$, the weight of a logistic regression that tells the two sides apart. Both come from the
# same linear map, so the matrix of cosines $\cos(a_i, w_j)$ over 27 concepts should look like the
# identity ({cite}`liu2026predict`, section 6, Figure 3; appendices G.2 and J).
#
# This chapter computes that matrix on two real pretrained models that install from PyPI
# (SmolLM2-135M {cite}`allal2025smollm2` and Gemma-3-270m {cite}`gemma2025gemma3`), on the 27
# word-pair files the authors took from {cite}`park2024linear` and on a set of our own,
# first exactly as the authors did (**paper mode**) and then with held-out pairs, a sweep of the
# probe's regularisation and three baselines (**rigorous mode**). Any Hugging Face model can be
# used instead: `-p models '["EleutherAI/pythia-70m"]'` where the hub is reachable.

# %% [markdown]
# ```{admonition} Learning goals and prerequisites
# :class: tip
#
# **Goals:** After this chapter you can compute concept directions and linear probes on a real
# language model, reproduce Figure 3's matrix, and explain why its diagonal is near 1 by
# construction in the authors' protocol and what a held-out version with baselines shows.
#
# **Prerequisites:** the theory chapter's corollaries, logistic regression and L2
# regularisation, cosine similarity. About 20 minutes to read.
# ```

# %% tags=["parameters"]
profile: str = "default"  # preset that the values below override: smoke (seconds), classroom (a couple of minutes a chapter), default (the book, CPU) or paper (the paper's sizes, a GPU)
# Each parameter below: None = the profile's value.
models: list = None  # models: embedded short names, Hugging Face ids or local folders ('tiny:llama' ＝ a random tiny model, for tests) [list of str (at least one)]
concept_sources: list = None  # concept sets; 'paper' is shown when a folder of its files is named (else skipped with a note) [each one of 'embedded', 'paper' (at least one)]
word_pairs_dir: str = None  # folder of the paper's 27 word-pair files (else $IPTA_WORD_PAIRS_DIR; with neither, the paper's set is skipped with a note) [str or NoneType]
concepts: list = None  # concepts to use (empty ＝ all 27) [each one of 'verb-3pSg', 'verb-Ving', 'verb-Ved', 'Ving-3pSg', 'Ving-Ved', '3pSg-Ved', 'verb-V+able', 'verb-V+er', 'verb-V+tion', 'verb-V+ment', 'adj-un+adj', 'adj-adj+ly', 'small-big', 'thing-color', 'thing-part', 'country-capital', 'pronoun-possessive', 'male-female', 'lower-upper', 'noun-plural', 'adj-comparative', 'adj-superlative', 'frequent-infrequent', 'English-French', 'French-German', 'French-Spanish', 'German-Spanish']
layer: int = None  # index into hidden_states (-1 ＝ after the final norm, the paper's) [int ≥ -1024 ≤ 1024]
position: str = None  # token read: last sub-token (paper) or mean [one of 'last', 'mean']
template: str = None  # prompt around each word, with '{word}' (None ＝ alone) [str or NoneType]
revision: str = None  # hub revision of the model(s) [str or NoneType]
modes: list = None  # which protocols to run [each one of 'paper', 'rigorous' (at least one)]
C: float = None  # inverse L2 strength of the probe in paper mode [float ≥ 1e-08 ≤ 100000000.0]
C_sweep: list = None  # values of C in rigorous mode [list of float ≥ 1e-08 ≤ 100000000.0 (at least one)]
seeds: list = None  # seeds of the train/test splits (rigorous mode) [list of int ≥ 0 ≤ 2147483647 (at least one)]
test_fraction: float = None  # share of each concept's pairs held out [float ≥ 0.05 ≤ 0.8]
max_iter: int = None  # lbfgs iterations of the paper-mode probe (the authors': 500) [int ≥ 10 ≤ 100,000 (more with allow_huge)]
rigorous_max_iter: int = None  # lbfgs iterations of the rigorous-mode probes: enough for every fit to converge at every C [int ≥ 10 ≤ 1,000,000 (more with allow_huge)]
device: str = None  # device for the forward passes: one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' [str]
dtype: str = None  # model dtype ('auto': float32 on a CPU, bfloat16 on a GPU that has it; the authors used float32) [one of 'auto', 'float32', 'bfloat16', 'float16']
batch_size: int = None  # words per forward pass [int ≥ 1 ≤ 4,096 (more with allow_huge)]
positive_control: bool = None  # run the rigorous mode on the theory chapter's model too, where the corollaries' premises hold and the answer is known [bool]
throughput: bool = None  # measure each model's words per second of uncached extraction for the summary table [bool]
device_map: str = None  # spread each model with accelerate: 'auto' fills the GPUs in turn, then the CPU (for models larger than one device); None keeps it on `device` [one of None, 'auto']
allow_huge: bool = None  # lift the soft upper bounds ('more with allow_huge') on sizes and counts, for a run that really is that large [bool]

# %%
from ipta.probing import chapter
cfg = chapter.setup(profile, namespace=globals())
v = chapter.glued  # the numbers the text quotes, by name: {eval}`v["name:format"]`

# %% [markdown]
# ## The concept sets
#
# The authors' pairs come from the `linear_rep_geometry` repository of Park, Choe and Veitch; they
# carry no licence, so this book never ships them: they are read from a folder
# (`$IPTA_WORD_PAIRS_DIR`) or downloaded at a pinned commit, and each file's sha256 is checked.
# Our own set has the same 27 concept names but is built at run time from facts held by
# offline libraries (verb, noun and adjective inflections from `lemminflect`, capitals from
# `countryinfo`, month, weekday, country and language names in four languages from the Unicode
# CLDR data in `babel`) and, for derivations, sizes, colours, parts, gender pairs and rarer
# synonyms, from short word lists written for this project (`ipta/lm/concept_data.py`). The table
# counts pairs per concept; the paper's files keep duplicated lines and identical pairs, which
# the authors did not filter and neither do we in paper mode.

# %%
from IPython.display import Markdown, display
res = chapter.run(cfg)
print(chapter.describe(res))
for note in res.notes:
    display(Markdown(f"**Note.** {note}"))
chapter.table_counts(res)

# %% [markdown]
# ## Paper mode: Figure 3
#
# Each word is fed alone; $f$ is the last hidden state after the final norm, at the word's last
# sub-token; $a_i$ is the normalised mean of $f(\text{base}) - f(\text{target})$ over all pairs of
# concept $i$; $w_j$ is the normalised weight of `LogisticRegression(C=1e-4, max_iter=500)`
# fitted on all pairs of concept $j$ (scikit-learn's problem and solver settings, solved by
# `ipta.probes.logistic_regression`). Rows are directions, columns probes, in the paper's order.

# %%
chapter.save_figure("probe-paper", chapter.figure_paper_heatmaps(res))

# %% [markdown]
# ```{figure} figures/probe-paper.png
# :name: fig-probe-paper
# :alt: Heatmaps, one per model and concept set: cosine between each concept's direction and each concept's probe, 27 by 27, with concept names.
#
# Figure 3 as the authors compute it (paper mode): $\cos(a_i, w_j)$ between each concept's
# direction (rows) and each concept's probe (columns), both from all pairs, one heatmap per model
# and concept set, on a $-1$ to $1$ colour scale.
# ```

# %% [markdown]
# ## Why the diagonal is close to 1 in paper mode
#
# A logistic regression minimises the log-loss plus $\lVert w\rVert^2 / (2C)$. When $C$ is tiny
# the penalty dominates, the weight stays near zero, and the loss can be replaced by its
# first-order expansion around $w = 0$, where every prediction is 1/2. The gradient there is
# proportional to the difference between the mean representation of the base words and that of
# the target words, so the optimal $w$ points along that mean difference. For paired data that
# difference *is* $a_i$ (up to the pairs' order), so $\cos(a_i, w_i) \to 1$ as $C \to 0$
# whatever the model has learned. At larger $C$ the probe is free to use the within-class
# covariance (it whitens the direction, like linear discriminant analysis), and a diagonal that
# stays high and dominant there, with directions estimated from pairs the probes never saw, is
# the evidence that says something about the model. The rigorous mode below measures that.

# %% [markdown]
# ## Rigorous mode: held-out directions, a sweep of C, and baselines
#
# Paper mode fits $a_i$ and $w_j$ on the same pairs. Here, for each seed, the **words** are split
# in two: duplicated and identical pairs are dropped, words linked by a pair (in any concept)
# stay together, and whole groups go to the held-out side until it holds
# {eval}`v["test_share:.0%"]` of the pairs, so no word (and no pair) is on both sides. The probes
# $w_j$ are fitted on the training side, the directions $a_i$ on the **held-out** side, so
# $M_{ij}=\cos(a_i^{\text{test}}, w_j^{\text{train}})$ shares no pair between its rows and
# columns. Two references, which must not be confused:
#
# * the **mean-difference estimator**, $\cos(a_i^{\text{train}}, a_i^{\text{test}})$: the score of
#   one particular probe, the normalised mean difference of the training pairs (the limit of a
#   probe as $C\to0$). It is not a bound: a probe that estimates the true direction better than
#   the mean difference can exceed it, and at the smallest $C$ a probe matches it by
#   construction;
# * the **noise ceiling** of the held-out directions: split each concept's held-out pairs in
#   two, take the cosine $\rho$ between the halves' directions, and correct it to the whole side,
#   $\sqrt{2\rho/(1+\rho)}$. That is the cosine the true direction itself would be expected to
#   reach with a held-out direction this noisy: a real bound on the diagonal.
#
# Controls: the same matrix with directions from the training pairs (**same pairs**, not held
# out, as in paper mode), the **permuted-label null** (probes fitted after shuffling which words
# are base and which target) and **random W** (random unit vectors). The Euclidean cosine depends
# on the basis of the representation; the **causal inner product** of Park, Choe and Veitch
# {cite}`park2024linear` does not: with $\mathrm{Cov}$ the covariance of the model's unembedding
# vectors, $\cos_C(a, w) = a^\top w / (\sqrt{a^\top \mathrm{Cov}\,a}\,
# \sqrt{w^\top\mathrm{Cov}^{-1}w})$ is unchanged by any invertible map of the representation
# that leaves the logits unchanged, so we report the diagonal in both. Metrics: mean diagonal,
# mean absolute off-diagonal, share of rows whose largest entry is the diagonal, the Frobenius
# gap $\lVert A W - P_S\rVert_F$ with $P_S = A(A^\top A)^{-1}A^\top$ (zero when $W$ is $A$'s
# pseudo-inverse), probe accuracy on the held-out pairs, the share of probe fits in which lbfgs
# converged, and the training pairs per concept a probe of $D$ weights was fitted on. Means and
# standard deviations are over {eval}`v["n_seeds"]` seeds.
#
# **A positive control.** The same pipeline (split, $C$ sweep, held-out comparison, causal inner
# product) also runs on representations of the theory chapter's model, where the corollaries'
# premises hold and the answer is known: an additive token channel, a sharp one, a nearly
# invertible context, the exact optimum of the next-token objective as the representation, and
# context pairs that differ in one latent concept as the "word pairs". Its rows show what "the
# corollary holds" looks like through this pipeline.

# %%
table = chapter.table_summary(res)
numbers = chapter.glue_numbers(res, cfg)
chapter.folded(chapter.table_rows(table), f"Every row of the summary ({len(table)} rows)")

# %% [markdown]
# Per concept: the mean-difference estimator's score and the held-out directions' noise
# ceiling (the bound on its diagonal entry), means over seeds.

# %%
chapter.table_reliability(res)

# %%
chapter.save_figure("probe-c-sweep", chapter.figure_c_sweep(table))

# %% [markdown]
# ```{figure} figures/probe-c-sweep.png
# :name: fig-probe-c-sweep
# :alt: Line plots against C, one panel per model and set: mean diagonal and off-diagonal of the held-out matrix, the permuted-label null and the split-half ceiling.
#
# The rigorous mode across regularisation: mean diagonal and mean $|$off-diagonal$|$ of the
# held-out matrix against $C$ (error bars: one standard deviation over seeds), with the
# permuted-label null and the split-half reliability that bounds the diagonal.
# ```

# %% [markdown]
# The seed-mean held-out matrices at the largest C of the sweep. Rows are directions from
# held-out pairs, columns probes from training pairs; both these and the paper-mode heatmaps
# above use the same colour scale, −1 to 1.

# %%
chapter.save_figure("probe-rigorous", chapter.figure_rigorous_heatmaps(res, cfg))

# %% [markdown]
# ```{figure} figures/probe-rigorous.png
# :name: fig-probe-rigorous
# :alt: Heatmaps, one per model and concept set: held-out cosine between concept directions and probes, 27 by 27, with concept names.
#
# The held-out matrix at the largest $C$: rows are directions $a_i$ from held-out pairs, columns
# probes $w_j$ fitted on training pairs, seed means, on the same colour scale as the paper mode.
# ```

# %% [markdown]
# ## Summary
#
# Summary metrics per model, concept set and mode (paper mode at the authors' C; rigorous mode's
# ceiling, the probes at the smallest and largest C of the sweep, and the null), and the
# extraction throughput measured on this machine (uncached forward passes of single words, model
# load excluded).

# %%
display(chapter.table_closing(table, res, cfg))

# %% [markdown]
# **Reading** (for {eval}`v["model:md"]` on the {eval}`v["set:md"]` pairs). In paper mode the mean diagonal
# is {eval}`v["paper_diag:.3f"]` and the mean |off-diagonal| {eval}`v["paper_off:.3f"]`. With
# the directions fitted on the probes' own training pairs, the diagonal at
# $C=${eval}`v["c_lo:g"]` is {eval}`v["same_lo:.3f"]`: near 1 by construction, as the previous
# section explains. Held out, it is {eval}`v["held_lo:.3f"]` at $C=${eval}`v["c_lo:g"]`, where the
# probe is nearly the mean-difference estimator (which scores {eval}`v["estimator:.3f"]`), and
# {eval}`v["held_hi:.3f"]` ± {eval}`v["held_hi_sd:.3f"]` at $C=${eval}`v["c_hi:g"]`
# ({eval}`v["causal_hi:.3f"]` under the causal inner product), against a noise ceiling of
# {eval}`v["noise_ceiling:.3f"]`; the permuted-label null reads {eval}`v["null_hi:.3f"]` and
# random directions {eval}`v["random:.3f"]`. The mean |off-diagonal| at $C=${eval}`v["c_hi:g"]`
# is {eval}`v["off_hi:.3f"]` ({eval}`v["causal_off_hi:.3f"]` causal), and the probes classify
# held-out pairs with accuracy {eval}`v["acc_hi:.3f"]`. At that $C$ each probe of
# $D=${eval}`v["D:.0f"]` weights was fitted on a median of {eval}`v["train_pairs:.0f"]`
# training pairs: the classes are separable, and the weight follows the within-class
# covariance, so a low Euclidean cosine with the mean difference is expected whatever the
# model represents. The positive control shows how low: where the corollary holds by
# construction, the held-out diagonal falls from {eval}`v["control_held_lo:.3f"]` at
# $C=${eval}`v["c_lo:g"]` to {eval}`v["control_held_hi:.3f"]` at $C=${eval}`v["c_hi:g"]`
# ({eval}`v["control_causal_hi:.3f"]` causal; noise ceiling {eval}`v["control_ceiling:.3f"]`),
# while its off-diagonal falls to {eval}`v["control_off_hi:.3f"]` (null
# {eval}`v["control_null_off_hi:.3f"]`); with the named channel, where Corollary 4.2's premise
# fails but 4.3's alignment is still expected (see the theory chapter), the diagonal is
# {eval}`v["named_held_hi:.3f"]` and the off-diagonal {eval}`v["named_off_hi:.3f"]`. So a
# diagonal well below the ceiling at large $C$ does not by itself refute Corollary 4.3; what
# the corollary predicts, and the control shows, is an off-diagonal near the null's with a
# diagonal well above it. The least reliable concept has a noise ceiling of
# {eval}`v["min_noise_ceiling:.2f"]` and the smallest held-out side
# {eval}`v["min_test_pairs:.0f"]` pairs. Held out at $C=${eval}`v["c_hi:g"]`, for every model
# and set: {eval}`v["every_run:md"]`. Convergence: {eval}`v["converged_note:md"]`; in paper mode, with
# the authors' 500 iterations, the share of converged fits is
# {eval}`v["paper_converged:.2f"]`.
#
# The paper reports, for Pythia, Llama and DeepSeek models, heatmaps whose diagonal is close to
# 1 with small off-diagonal entries. Our paper-mode numbers for two much smaller models can be
# compared with that picture directly; the rigorous rows say how much of it survives on pairs
# the directions were not estimated from, and the noise ceiling says how much could. The
# off-diagonal mass of the estimator's matrix is what the concept directions already share
# (concepts such as verb-Ving and Ving-Ved share a word form and are not independent).
#
# **Precision.** `dtype` is a run setting (shown at the top of the page): `auto` means float32 on
# a CPU, as here, and bfloat16 on a GPU that supports it; the authors ran in float32, and the
# `paper` profile pins float32.


# %% [markdown]
# ## Exercises
#
# Solutions are folded: try first, then click to compare. Each one ran when this page was built.
#
# ```{exercise} Write it: diagonal against off-diagonal in paper mode
# :label: probe-ex-paper
#
# `res.paper` maps each (model, concept set) to the authors' protocol's result, a dictionary with
# the matrix `M` ($M_{ij} = \cos(a_i, w_j)$) and its summaries `diag` and `offdiag_abs`. Print,
# for each, the mean diagonal, the mean $|$off-diagonal$|$ and the share of rows whose largest
# entry is on the diagonal, computing the last one yourself from `M`. Put the shares in
# `answer`, a dict {(model, concept set): share}; the check cell after the exercise says
# whether they match.
# ```

# %% [markdown]
# ```{solution-start} probe-ex-paper
# :class: dropdown
# ```

# %%
import numpy as np

answer = {}
for (model, concept_set), r in res.paper.items():
    M = r["M"]
    row_max = answer[model, concept_set] = float((M.argmax(axis=1) == np.arange(len(M))).mean())
    print(f"{model} / {concept_set}: diagonal {r['diag']:.3f}, |off-diagonal| "
          f"{r['offdiag_abs']:.3f}, diagonal is the row maximum in {row_max:.0%} of rows")

# %% [markdown]
# The diagonal being the row maximum is a weaker and more telling statement than "the diagonal
# is near 1": it asks whether each probe points to its own concept more than to any other.
#
# ```{solution-end}
# ```

# %%
chapter.check_exercise("probe-ex-paper", answer, res)

# %% [markdown]
# ```{exercise} Predict, then check: what does a random W give?
# :label: probe-ex-random
#
# Before looking: if the probe weights $W$ were random directions, what would the mean diagonal
# of $\cos(a_i, w_j)$ be, and what the mean $|$off-diagonal$|$? Then read the rows of kind
# `random W` and `probe` in the rigorous table (`table`, built above).
# ```

# %% [markdown]
# ```{solution-start} probe-ex-random
# :class: dropdown
# ```

# %%
shown = table[table["mode"] == "rigorous"] if "mode" in table else table
shown[shown["kind"].isin(["random W", "probe"])][
    ["model", "set", "kind", "C", "diag", "offdiag_abs"]]

# %% [markdown]
# Random directions in $d$ dimensions have cosines near 0 with spread about $1/\sqrt d$, on and
# off the diagonal alike. A held-out diagonal clearly above the random rows, and above the
# off-diagonal, is what the corollary predicts; a diagonal no higher than the off-diagonal
# would not support it.
#
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} Predict, then re-run: weaker regularisation
# :label: probe-ex-c
#
# The authors' probe uses $C = 10^{-4}$, a very strong L2 penalty. Predict what happens to the
# paper-mode diagonal with $C = 1$ (`ipta run 03 -p C 1`). Then read the rigorous sweep's
# `probe, same pairs` rows, fitted and scored on the same pairs as paper mode, at each $C$.
# ```

# %% [markdown]
# ```{solution-start} probe-ex-c
# :class: dropdown
# ```

# %%
same = shown[shown["kind"] == "probe, same pairs"]
same[["model", "set", "C", "diag", "offdiag_abs"]]

# %% [markdown]
# With a strong penalty the logistic-regression weights shrink towards the difference of the
# class means, which is the concept direction $a_i$ itself, so the diagonal is close to 1 by
# construction. As $C$ grows the probe uses the rest of the representation and the diagonal
# falls; the section *Why the diagonal is close to 1 in paper mode* works this out.
#
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} Discuss: what would Figure 3 need to show?
# :label: probe-ex-discuss
#
# Corollary 4.3 predicts $W^\top A \approx I$ after normalisation. Which of this page's results
# support it, which are explained by how the probes are fitted rather than by the theorem, and
# what single control would you add if you were refereeing the paper?
# ```

# %% [markdown]
# ```{solution-start} probe-ex-discuss
# :class: dropdown
# ```

# %% [markdown]
# Points a good answer makes: in paper mode, $A$ and $W$ come from the same pairs and a very
# small $C$ makes $w_i$ nearly parallel to $a_i$, so the diagonal alone cannot support the
# corollary. What can: held-out directions, the diagonal against the off-diagonal and against
# random and permuted-label baselines, and the split-half ceiling, which bounds how aligned two
# estimates of the same direction can be. A referee would ask for at least the held-out matrix
# with its chance level.
#
# ```{solution-end}
# ```
