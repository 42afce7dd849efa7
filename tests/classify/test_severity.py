from __future__ import annotations

from vigil_classify.engine import Classifier
from vigil_classify.severity import severity, urgency


def test_imminent_is_immediate(classifier: Classifier) -> None:
    result = classifier.classify("There is a possible imminent terrorist attack on hotels in Istanbul.")
    assert result.urgency == "Immediate"
    assert result.severity == "Severe"


def test_next_week_is_future_and_transport_minor(classifier: Classifier) -> None:
    result = classifier.classify("Rail unions have announced a rail strike next week in London.")
    assert result.urgency == "Future"
    assert result.severity == "Minor"


def test_ordered_departure_is_extreme(classifier: Classifier) -> None:
    result = classifier.classify(
        "The Department of State ordered the departure of staff due to armed clashes and airstrikes."
    )
    assert result.severity == "Extreme"
    assert result.urgency == "Immediate"


def test_magnitude_sets_severity() -> None:
    cues = {"sev:magnitude": 1}
    assert severity(["natural_disaster"], cues, "A magnitude 4.2 earthquake", "Expected") == "Minor"
    assert severity(["natural_disaster"], cues, "A magnitude 7.3 earthquake", "Expected") == "Extreme"


def test_cyber_only_has_unknown_urgency() -> None:
    assert urgency(["cyber"], {}) == "Unknown"
    assert urgency(["terrorism"], {}) == "Expected"
    assert urgency([], {"urg:Immediate": 2}) == "Unknown"


def test_cap_values_win(classifier: Classifier) -> None:
    text = "A magnitude 7.5 earthquake struck this morning and buildings collapsed in Lima, Peru."
    derived = classifier.classify(text)
    assert (derived.urgency, derived.severity) == ("Immediate", "Extreme")
    given = classifier.classify(text, cap_urgency="Future", cap_severity="Minor", cap_certainty="Possible")
    assert (given.urgency, given.severity, given.certainty) == ("Future", "Minor", "Possible")


def _base_rank_by_names(threats: list[str], cues: dict[str, int]) -> int:
    """The base rank as the rule reads (the highest base of the types; crime is Minor with a petty
    cue unless kidnapping or terrorism is among them), by severity names."""
    from vigil_classify.severity import _BASE
    from vigil_shared.events import SEVERITY_RANK

    ranks = []
    for t in threats:
        base = _BASE.get(t, "Moderate")
        if t == "crime" and cues.get("sev:petty", 0) and not {"kidnapping", "terrorism"} & set(threats):
            base = "Minor"
        ranks.append(SEVERITY_RANK[base])
    return max(ranks)


def test_base_rank_is_the_rule_of_the_names() -> None:
    """severity() takes the base from a table of ranks: the same as the rule by names, for any mix of
    types (an unlisted one included) and petty cues, seen through every urgency (no other cue)."""
    import itertools

    from vigil_classify.severity import _cap
    from vigil_shared.events import Urgency

    urgencies: tuple[Urgency, ...] = ("Expected", "Past", "Future", "Immediate")
    types = ["terrorism", "crime", "kidnapping", "cyber", "health", "transport_disruption", "other_type"]
    seen = set()
    for n in (1, 2, 3):
        for threats in itertools.permutations(types, n):
            for petty in (0, 1, 2):
                cues = {"sev:petty": petty} if petty else {}
                for urg in urgencies:
                    base = _base_rank_by_names(list(threats), cues)
                    want = _cap(base - 1 if urg in ("Past", "Future") else base)
                    got = severity(list(threats), cues, "", urg)
                    assert got == want, (threats, cues, urg)
                    seen.add(got)
    assert seen == {"Minor", "Moderate", "Severe"}
