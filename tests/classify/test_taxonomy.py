from __future__ import annotations

import pytest
from vigil_classify.engine import Classifier
from vigil_classify.taxonomy import expand

THREAT_CASES = {
    "terrorism": "Extremist groups are planning terrorist attacks in Cairo, Egypt.",
    "civil_unrest": "Large protests and demonstrations are expected in Quito, Ecuador.",
    "armed_conflict": "Airstrikes and artillery shelling continue near Aleppo, Syria.",
    "crime": "Armed robbery and carjackings are common in Johannesburg, South Africa.",
    "kidnapping": "Foreigners have been kidnapped for ransom in Zamboanga, Philippines.",
    "natural_disaster": "Flash floods and landslides have hit Kathmandu, Nepal.",
    "health": "A cholera outbreak has been declared in Lusaka, Zambia.",
    "transport_disruption": "All flights at the airport in Lisbon, Portugal have been cancelled.",
    "cyber": "Hackers are sending phishing emails with malware to travellers in Singapore.",
}

TARGET_CASES = {
    "shopping_centers": "shopping malls",
    "transport_hubs": "railway and metro stations",
    "places_of_worship": "churches, synagogues and mosques",
    "diplomatic_missions": "embassies and consulates",
    "westerners_venues": "places popular with Western visitors",
    "crowded_places": "markets and large gatherings",
    "hotels": "luxury hotels",
    "government_buildings": "government buildings",
    "schools": "schools and universities",
    "tourist_sites": "tourist attractions",
    "entertainment_venues": "nightclubs and concert venues",
}


@pytest.mark.parametrize(("label", "text"), sorted(THREAT_CASES.items()))
def test_each_threat_label(classifier: Classifier, label: str, text: str) -> None:
    result = classifier.classify(text)
    assert result.is_threat
    assert label in {t.type for t in result.threat_types}
    score = next(t for t in result.threat_types if t.type == label)
    assert score.evidence, "a label must come with the words that triggered it"


@pytest.mark.parametrize(("label", "phrase"), sorted(TARGET_CASES.items()))
def test_each_target_label(classifier: Classifier, label: str, phrase: str) -> None:
    text = f"Terrorist groups may attack {phrase} in Amman, Jordan."
    result = classifier.classify(text)
    assert label in {t.type for t in result.targets}


def test_targets_only_for_threats(classifier: Classifier) -> None:
    result = classifier.classify("The consular section near the hotels in Rome will have new opening hours.")
    assert not result.is_threat
    assert result.targets == ()


def test_routine_consular_messages_are_not_threats(classifier: Classifier) -> None:
    for text in (
        "The U.S. Embassy in Tokyo will be closed on Monday for a federal holiday. Routine passport "
        "services resume on Tuesday.",
        "U.S. citizens in Germany can register to vote absentee and return their ballots to the "
        "Embassy in Berlin.",
        "The consular section in Lima is adding passport appointments in June.",
    ):
        result = classifier.classify(text)
        assert not result.is_threat, text
        assert result.threat_types == ()
        assert result.urgency == "Unknown"
        assert result.severity == "Unknown"


def test_negated_cue_does_not_count(classifier: Classifier) -> None:
    result = classifier.classify("Police said there were no reports of protests in Accra, Ghana.")
    assert "civil_unrest" not in {t.type for t in result.threat_types}
    plain = classifier.classify("Police reported protests in Accra, Ghana.")
    assert "civil_unrest" in {t.type for t in plain.threat_types}


def test_imperative_do_not_is_not_negation(classifier: Classifier) -> None:
    result = classifier.classify("Do not attempt to drive through protesters in Lima, Peru.")
    assert "civil_unrest" in {t.type for t in result.threat_types}


def test_no_longer_danger_is_past(classifier: Classifier) -> None:
    result = classifier.classify(
        "Police foiled a terrorist plot against a concert in Vienna. Authorities said there was no "
        "longer a concrete danger."
    )
    assert "terrorism" in {t.type for t in result.threat_types}
    assert result.urgency == "Past"


def test_bomb_shelter_is_not_terrorism(classifier: Classifier) -> None:
    result = classifier.classify("Know the location of the nearest bomb shelter in Haifa.")
    assert "terrorism" not in {t.type for t in result.threat_types}


def test_singular_embassy_as_speaker_is_not_a_target(classifier: Classifier) -> None:
    speaker = classifier.classify("The Embassy warns of terrorist attacks on hotels in Dakar, Senegal.")
    assert "diplomatic_missions" not in {t.type for t in speaker.targets}
    target = classifier.classify("Terrorists may attack hotels and security was raised at the U.S. Embassy.")
    assert "diplomatic_missions" in {t.type for t in target.targets}


def test_transport_disruption_needs_an_effect(classifier: Classifier) -> None:
    open_ = classifier.classify("Rockets were fired. The airport remains open but delays are possible.")
    assert "transport_disruption" not in {t.type for t in open_.threat_types}
    closed = classifier.classify("After the earthquake the airport and main roads are closed.")
    assert "transport_disruption" in {t.type for t in closed.threat_types}


def test_expand_plurals() -> None:
    assert expand("shopping mall+") == ["shopping mall", "shopping malls"]
    assert expand("church+") == ["church", "churches"]
    assert expand("diplomatic facilit+y") == ["diplomatic facility", "diplomatic facilities"]
    assert expand("embassies") == ["embassies"]
