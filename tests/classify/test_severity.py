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
