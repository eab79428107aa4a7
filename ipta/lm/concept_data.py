"""Our own 27-concept word-pair set, built at run time so the book needs no download.

Same concept names as the paper (section 6, appendix J), different words. Where a library holds
the facts, it produces the pairs at run time: ``lemminflect`` inflects verbs, nouns and adjectives;
``countryinfo`` gives capitals; ``babel`` (Unicode CLDR data) gives month, weekday, country and
language names in English, French, German and Spanish. The remaining concepts (derivations such
as V+able, opposites of size, colours, parts, gender pairs, rarer synonyms) come from the short
lists below, written for this project. Identical pairs are dropped (they carry no concept) and
duplicates removed, so unlike the paper's files the counts below are all distinct pairs.
"""

from __future__ import annotations

from functools import lru_cache

# Base verbs for the six inflection concepts; regular and irregular, all common.
_VERBS = (
    "ask bake begin bring build buy call carry catch choose clean climb close cook cry dance "
    "draw drink drive eat fall feel fight find fly follow forget give grow hear help hide hold "
    "hope jump keep know laugh learn leave listen live look lose make meet move open paint pay "
    "play pull push read ride ring rise run say see sell send shake shine sing sit sleep speak "
    "stand steal swim take teach tell think throw try wake walk wash watch win write"
).split()

_NOUNS = (
    "apple baby bird book box boy bus cat child city class dog dress church family foot fox "
    "glass goose horse house key knife leaf life lady man mouse party person potato story "
    "tooth toy tree wife wish woman country day match hero"
).split()

# Adjectives with one-word comparative and superlative forms.
_GRADABLE = (
    "big bright calm cheap clean clear close cold cool dark deep dry early easy fast fat few "
    "fine funny great happy hard heavy high hot kind large late light long loud low lucky mild "
    "narrow near new nice old pretty proud quick quiet rich rough sad safe short simple slow "
    "small smart soft strong sweet tall thick thin tiny warm weak wet wide wild young"
).split()

# verb -> derived word; our own lists of standard English derivations.
_ABLE = ("accept adapt adjust afford avoid believe break comfort consider count drink enjoy "
         "excuse expect forget identify love manage notice predict prefer read recognise "
         "remark rely wash").split()
_ER = ("bake build climb dance drive farm fight hunt jump lead paint play read ride run sing "
       "speak swim teach travel walk win work write").split()
_TION = (("act", "action"), ("add", "addition"), ("admire", "admiration"),
         ("collect", "collection"), ("complete", "completion"), ("connect", "connection"),
         ("create", "creation"), ("decorate", "decoration"), ("describe", "description"),
         ("educate", "education"), ("elect", "election"), ("explain", "explanation"),
         ("imagine", "imagination"), ("inform", "information"), ("invent", "invention"),
         ("invite", "invitation"), ("locate", "location"), ("operate", "operation"),
         ("predict", "prediction"), ("prepare", "preparation"), ("protect", "protection"),
         ("reduce", "reduction"), ("relate", "relation"), ("translate", "translation"))
_MENT = ("achieve adjust advertise agree amuse appoint arrange assess attach commit develop "
         "employ enjoy equip establish govern improve invest manage measure move pay place "
         "replace require settle treat").split()
_UN = ("able aware believable certain clear common comfortable conscious even expected fair "
       "familiar fit friendly happy healthy kind known likely lucky necessary pleasant "
       "popular real safe seen stable sure true usual wise").split()
_LY_BASE = ("angry bad brave calm careful clear close correct eager easy exact free gentle "
            "happy honest loud nice open polite proud quick quiet rare real sad safe serious "
            "silent slow soft strong sudden warm wise").split()

_SMALL_BIG = (("pebble", "boulder"), ("pond", "lake"), ("stream", "river"), ("hill", "mountain"),
              ("village", "city"), ("puppy", "dog"), ("kitten", "cat"), ("cottage", "mansion"),
              ("boat", "ship"), ("drizzle", "downpour"), ("breeze", "gale"), ("cup", "bucket"),
              ("spoon", "ladle"), ("minute", "hour"), ("gram", "kilogram"), ("inch", "foot"),
              ("twig", "trunk"), ("lamb", "sheep"), ("foal", "horse"), ("path", "highway"),
              ("shed", "warehouse"), ("van", "truck"), ("tiny", "huge"), ("small", "large"))
_THING_COLOR = (("banana", "yellow"), ("grass", "green"), ("sky", "blue"), ("snow", "white"),
                ("coal", "black"), ("blood", "red"), ("lemon", "yellow"), ("orange", "orange"),
                ("cherry", "red"), ("leaf", "green"), ("ocean", "blue"), ("milk", "white"),
                ("night", "black"), ("tomato", "red"), ("lime", "green"), ("chocolate", "brown"),
                ("violet", "purple"), ("ash", "grey"), ("gold", "gold"), ("flamingo", "pink"),
                ("strawberry", "red"), ("cloud", "white"), ("soil", "brown"), ("frog", "green"),
                ("crow", "black"), ("sun", "yellow"), ("plum", "purple"), ("salt", "white"))
_THING_PART = (("car", "wheel"), ("tree", "branch"), ("house", "roof"), ("book", "page"),
               ("bird", "wing"), ("fish", "fin"), ("hand", "finger"), ("foot", "toe"),
               ("face", "nose"), ("chair", "leg"), ("door", "handle"), ("flower", "petal"),
               ("knife", "blade"), ("bicycle", "pedal"), ("ship", "deck"), ("shirt", "sleeve"),
               ("clock", "hand"), ("computer", "keyboard"), ("plant", "root"), ("castle", "tower"),
               ("cat", "tail"), ("city", "street"), ("piano", "key"), ("year", "month"),
               ("army", "soldier"), ("orchestra", "violin"))
_PRONOUN_POSSESSIVE = (("I", "my"), ("you", "your"), ("he", "his"), ("she", "her"),
                       ("it", "its"), ("we", "our"), ("they", "their"))
_MALE_FEMALE = (("king", "queen"), ("man", "woman"), ("boy", "girl"), ("father", "mother"),
                ("son", "daughter"), ("brother", "sister"), ("uncle", "aunt"),
                ("husband", "wife"), ("prince", "princess"), ("actor", "actress"),
                ("nephew", "niece"), ("grandfather", "grandmother"), ("he", "she"),
                ("his", "her"), ("him", "her"), ("sir", "madam"), ("lord", "lady"),
                ("groom", "bride"), ("waiter", "waitress"), ("emperor", "empress"),
                ("duke", "duchess"), ("monk", "nun"), ("bull", "cow"), ("rooster", "hen"),
                ("stallion", "mare"), ("gentleman", "lady"), ("male", "female"),
                ("masculine", "feminine"), ("dad", "mom"), ("mr", "mrs"))
_FREQUENT_INFREQUENT = (("buy", "purchase"), ("help", "assist"), ("start", "commence"),
                        ("end", "terminate"), ("show", "demonstrate"), ("big", "enormous"),
                        ("small", "minuscule"), ("use", "utilise"), ("ask", "inquire"),
                        ("try", "endeavour"), ("enough", "sufficient"), ("tired", "weary"),
                        ("happy", "jubilant"), ("sad", "melancholy"), ("fast", "rapid"),
                        ("old", "ancient"), ("funny", "hilarious"), ("smart", "astute"),
                        ("angry", "furious"), ("get", "obtain"), ("need", "require"),
                        ("rich", "affluent"), ("poor", "destitute"), ("hide", "conceal"),
                        ("eat", "devour"), ("walk", "stroll"), ("answer", "respond"),
                        ("friendly", "amiable"), ("strange", "peculiar"), ("clear", "lucid"))

# CLDR codes whose names babel renders in each language (countries and languages).
_TERRITORIES = ("DE", "FR", "ES", "IT", "GB", "US", "CN", "JP", "RU", "BR", "MX", "CA", "IN",
                "EG", "GR", "SE", "NO", "PL", "PT", "NL", "BE", "CH", "AT", "IE", "TR", "AR",
                "AU", "DK", "FI", "HU", "MA", "ZA", "KR", "TH", "HR")
_LANGUAGES = ("fr", "de", "es", "it", "en", "pt", "ru", "zh", "ja", "ar", "el", "nl", "sv",
              "pl", "tr", "ko")


def _inflect(word: str, tag: str) -> str | None:
    from lemminflect import getInflection

    forms = getInflection(word, tag=tag)
    return forms[0] if forms else None


def _inflection_pairs(words: tuple[str, ...] | list[str], tag_a: str | None,
                      tag_b: str) -> list[tuple[str, str]]:
    """(form A, form B) of each word; tag None means the word itself."""
    pairs = []
    for w in words:
        a = w if tag_a is None else _inflect(w, tag_a)
        b = _inflect(w, tag_b)
        if a and b and " " not in a + b:
            pairs.append((a, b))
    return pairs


def _ly(adj: str) -> str:
    """The English adverb of an adjective by the spelling rules (happy -> happily)."""
    if adj.endswith("le") and adj not in ("whole",):
        return adj[:-1] + "y"
    if adj.endswith("y") and len(adj) > 3:
        return adj[:-1] + "ily"
    return {"true": "truly", "full": "fully"}.get(adj, adj + "ly")


def _capitals() -> list[tuple[str, str]]:
    """Countries and capitals from countryinfo, one-word-ish names only, sorted by country."""
    from countryinfo import CountryInfo

    pairs = []
    for data in CountryInfo.all().values():
        name, capital = data.get("name"), data.get("capital")
        if name and capital and len(name.split()) == 1 and len(capital.split()) <= 2:
            pairs.append((name, capital))
    return sorted(set(pairs))


def _babel_names(locale: str) -> list[str]:
    """Month, weekday, country and language names in one locale, in a fixed order."""
    from babel import Locale

    loc = Locale.parse(locale)
    names = list(loc.months["format"]["wide"].values())
    names += list(loc.days["format"]["wide"].values())
    names += [loc.territories[c] for c in _TERRITORIES]
    names += [loc.languages[c] for c in _LANGUAGES]
    return names


def _translation_pairs(src: str, dst: str) -> list[tuple[str, str]]:
    pairs = zip(_babel_names(src), _babel_names(dst))
    return [(a, b) for a, b in pairs if " " not in a + b]


def _clean(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Distinct, non-identical pairs in first-seen order."""
    return [p for p in dict.fromkeys(pairs) if p[0] != p[1]]


@lru_cache(maxsize=1)
def _build() -> dict[str, tuple[tuple[str, str], ...]]:
    pairs = {
        "verb-3pSg": _inflection_pairs(_VERBS, None, "VBZ"),
        "verb-Ving": _inflection_pairs(_VERBS, None, "VBG"),
        "verb-Ved": _inflection_pairs(_VERBS, None, "VBD"),
        "Ving-3pSg": _inflection_pairs(_VERBS, "VBG", "VBZ"),
        "Ving-Ved": _inflection_pairs(_VERBS, "VBG", "VBD"),
        "3pSg-Ved": _inflection_pairs(_VERBS, "VBZ", "VBD"),
        "verb-V+able": [(v, _able(v)) for v in _ABLE],
        "verb-V+er": [(v, _agent(v)) for v in _ER],
        "verb-V+tion": list(_TION),
        "verb-V+ment": [(v, v + "ment") for v in _MENT],
        "adj-un+adj": [(a, "un" + a) for a in _UN],
        "adj-adj+ly": [(a, _ly(a)) for a in _LY_BASE],
        "small-big": list(_SMALL_BIG),
        "thing-color": list(_THING_COLOR),
        "thing-part": list(_THING_PART),
        "country-capital": _capitals(),
        "pronoun-possessive": list(_PRONOUN_POSSESSIVE),
        "male-female": list(_MALE_FEMALE),
        "lower-upper": [(w, w.capitalize()) for w in _NOUNS + _GRADABLE[:30]],
        "noun-plural": _inflection_pairs(_NOUNS, None, "NNS"),
        "adj-comparative": _inflection_pairs(_GRADABLE, None, "JJR"),
        "adj-superlative": _inflection_pairs(_GRADABLE, None, "JJS"),
        "frequent-infrequent": list(_FREQUENT_INFREQUENT),
        "English-French": _translation_pairs("en", "fr"),
        "French-German": _translation_pairs("fr", "de"),
        "French-Spanish": _translation_pairs("fr", "es"),
        "German-Spanish": _translation_pairs("de", "es"),
    }
    return {name: tuple(_clean(p)) for name, p in pairs.items()}


def _able(verb: str) -> str:
    """The -able adjective of a verb by the spelling rules (rely -> reliable, love -> lovable)."""
    if verb == "forget":
        return "forgettable"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "iable"
    if verb.endswith("e") and not verb.endswith(("ee", "ge", "ce")):
        return verb[:-1] + "able"
    return verb + "able"


def _agent(verb: str) -> str:
    """The agent noun of a verb by the spelling rules (run -> runner, bake -> baker)."""
    irregular = {"travel": "traveller"}
    if verb in irregular:
        return irregular[verb]
    if verb.endswith("e"):
        return verb + "r"
    if len(verb) >= 3 and verb[-1] in "bdgmnpt" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
        return verb + verb[-1] + "er"
    return verb + "er"


def embedded_pairs() -> dict[str, list[tuple[str, str]]]:
    """Our 27 concepts as (base, target) pairs, generated at run time (see the module docstring)."""
    return {name: list(pairs) for name, pairs in _build().items()}
