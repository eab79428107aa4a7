"""The paper's own SAE numbers (Liu et al. 2026, appendix H.3, Table 2), to set beside ours."""

from __future__ import annotations

PAPER_TABLE2 = {  # Liu et al. (2026), appendix H.3, Table 2: top-k, batch-top-k, p-anneal, ours
    "3psg_ved": (0.432, 0.332, 0.680, 0.691), "adj_adj_+_ly": (0.379, 0.396, 0.794, 0.833),
    "adj_comparative": (0.425, 0.334, 0.592, 0.727),
    "adj_superlative": (0.321, 0.302, 0.772, 0.746),
    "adj_un_+_adj": (0.534, 0.472, 0.741, 0.732), "country_capital": (0.205, 0.165, 0.495, 0.540),
    "english_french": (0.291, 0.265, 0.666, 0.649), "french_german": (0.264, 0.226, 0.550, 0.607),
    "french_spanish": (0.389, 0.264, 0.560, 0.561),
    "frequent_infrequent": (0.262, 0.255, 0.472, 0.554),
    "german_spanish": (0.250, 0.251, 0.667, 0.701), "lower_upper": (0.204, 0.293, 0.531, 0.543),
    "male_female": (0.413, 0.312, 0.532, 0.544), "noun_plural": (0.357, 0.346, 0.636, 0.650),
    "pronoun_possessive": (0.725, 0.779, 0.998, 0.991),
    "small_big": (0.327, 0.225, 0.506, 0.547), "thing_color": (0.588, 0.574, 0.895, 0.880),
    "thing_part": (0.240, 0.207, 0.400, 0.453), "verb_3psg": (0.312, 0.268, 0.622, 0.617),
    "verb_v_+_able": (0.458, 0.361, 0.763, 0.806), "verb_v_+_er": (0.318, 0.363, 0.609, 0.666),
    "verb_v_+_ment": (0.407, 0.288, 0.623, 0.674), "verb_v_+_tion": (0.429, 0.357, 0.653, 0.706),
    "verb_ved": (0.371, 0.333, 0.573, 0.656), "verb_ving": (0.369, 0.485, 0.612, 0.728),
    "ving_3psg": (0.286, 0.233, 0.646, 0.711), "ving_ved": (0.304, 0.245, 0.627, 0.682),
}
PAPER_MEAN = (0.365, 0.331, 0.638, 0.674)
PAPER_COVERAGE = (0.107, 0.071, 0.893, 0.964)


def paper_name(concept: str) -> str:
    """Our concept name ('verb-V+able') as the paper's table spells it ('verb_v_+_able')."""
    return concept.lower().replace("-", "_").replace("+", "_+_")
