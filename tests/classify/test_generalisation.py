"""Rules added for alerts unlike the dev set (own sentences; none taken from a fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vigil_classify.engine import Classifier
from vigil_classify.evaluation import evaluate, load_dataset


def _threats(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {t.type for t in result.threat_types}


def _targets(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {t.type for t in result.targets}


def _places(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {loc.name for loc in result.locations}


@pytest.mark.parametrize(
    "text",
    [
        "Armed men have threatened to attack churches in Jos, Nigeria, over the Easter weekend.",
        "A militant faction vowed to attack synagogues and schools in Marseille, France.",
        "Militants may attack bus terminals and markets in Quetta, Pakistan, this month.",
    ],
)
def test_threat_verbs_with_a_target_are_terrorism(classifier: Classifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.is_threat
    assert "terrorism" in _threats(result)


def test_calls_for_attacks_are_terrorism(classifier: Classifier) -> None:
    result = classifier.classify("Online calls for attacks on New Year's Eve crowds have circulated in Lyon, France.")
    assert "terrorism" in _threats(result)
    assert "crowded_places" in _targets(result)


def test_threat_to_a_military_target_stays_armed_conflict(classifier: Classifier) -> None:
    result = classifier.classify(
        "Rebel fighters threatened to attack police stations near Goma, and heavy fighting continues there."
    )
    assert "terrorism" not in _threats(result)


def test_targets_in_advice_sentence_count_for_a_threat(classifier: Classifier) -> None:
    result = classifier.classify(
        "Insurgent groups have threatened to attack shrines in Kabul, Afghanistan. Stay away from bazaars "
        "and places of worship until further notice."
    )
    assert {"places_of_worship", "crowded_places"} <= _targets(result)


def test_crime_targeting_foreigners_is_a_westerners_venue(classifier: Classifier) -> None:
    result = classifier.classify("Muggings targeting foreigners have risen near beach bars in Goa, India.")
    assert "westerners_venues" in _targets(result)


def test_cancelled_flights_make_airports_a_target(classifier: Classifier) -> None:
    result = classifier.classify(
        "Heavy snow is expected in Sapporo, Japan, and all domestic flights on Friday have been cancelled."
    )
    assert "transport_disruption" in _threats(result)
    assert "transport_hubs" in _targets(result)


@pytest.mark.parametrize(
    "text",
    [
        "Fighting continues near Juba, South Sudan. Flights from the international airport remain available.",
        "The floods in Porto Alegre, Brazil, have receded and universities have reopened.",
    ],
)
def test_no_target_where_it_remains_available_or_reopened(classifier: Classifier, text: str) -> None:
    result = classifier.classify(text)
    assert not ({"transport_hubs", "schools"} & _targets(result))


def test_recovery_notice_reports_no_transport_disruption(classifier: Classifier) -> None:
    result = classifier.classify(
        "Flooding in Bologna, Italy, has subsided and the regional alert has been lifted. A few minor "
        "roads remain closed while crews clear debris."
    )
    assert result.urgency == "Past"
    assert "transport_disruption" not in _threats(result)


def test_recovery_with_all_clear_is_minor(classifier: Classifier) -> None:
    result = classifier.classify(
        "Authorities have lifted the tsunami warning for Padang, Indonesia, and residents may resume normal activities."
    )
    assert result.urgency == "Past"
    assert result.severity == "Minor"


@pytest.mark.parametrize(
    "text",
    [
        "Protests have spread to several districts of Santiago, Chile.",
        "A cyberattack has disrupted ticketing at railway stations in Warsaw, Poland.",
        "Wildfire smoke is affecting air quality in Vancouver, Canada.",
    ],
)
def test_ongoing_events_are_immediate(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text).urgency == "Immediate"


def test_forecast_keeps_preparations_expected(classifier: Classifier) -> None:
    result = classifier.classify(
        "A tropical storm is forecast to reach Okinawa, Japan, tomorrow; ferry routes have been blocked "
        "by port authorities."
    )
    assert result.urgency == "Expected"


def test_no_specific_threat_is_future_and_moderate(classifier: Classifier) -> None:
    result = classifier.classify(
        "Police have stepped up patrols at stadiums in Madrid, Spain, after extremist propaganda appeared "
        "online. Authorities say there is no specific threat."
    )
    assert "terrorism" in _threats(result)
    assert result.urgency == "Future"
    assert result.severity == "Moderate"


def test_one_grave_cue_is_severe_two_are_extreme(classifier: Classifier) -> None:
    one = classifier.classify("A typhoon with destructive winds is forecast to hit Okinawa, Japan, on Sunday.")
    assert one.severity == "Severe"
    two = classifier.classify(
        "Gang shootings are widespread in Cap-Haitien, Haiti. Shelter in place until the gunfire stops."
    )
    assert two.severity == "Extreme"


def test_deaths_make_an_outbreak_immediate(classifier: Classifier) -> None:
    result = classifier.classify("A measles outbreak in Lusaka, Zambia, has caused 12 deaths among children.")
    assert result.urgency == "Immediate"
    assert result.severity == "Severe"


def test_state_after_city_is_context_only(classifier: Classifier) -> None:
    result = classifier.classify("Cartel violence has closed roads around Uruapan, Michoacan, since Sunday.")
    assert "Uruapan" in _places(result)
    assert not any(loc.kind == "region" for loc in result.locations)


def test_whole_country_notice_lists_the_country(classifier: Classifier) -> None:
    result = classifier.classify(
        "Nationals residing in Italy may renew passports by post. The Embassy in Rome and the Consulate "
        "General in Milan will no longer accept walk-in applications."
    )
    assert _places(result) == {"Italy"}


def test_office_visited_is_a_place(classifier: Classifier) -> None:
    result = classifier.classify(
        "Citizens living in Spain can collect ballots at the Embassy in Madrid or the Consulate in Barcelona."
    )
    assert {"Madrid", "Barcelona"} <= _places(result)


def test_office_speaking_in_a_threat_alert_keeps_its_city(classifier: Classifier) -> None:
    result = classifier.classify(
        "In Kenya, the consulate in Mombasa warned of possible attacks on hotels and beach resorts."
    )
    assert "Mombasa" in _places(result)


def test_origin_with_direction_is_not_a_place(classifier: Classifier) -> None:
    result = classifier.classify("Drones launched from northern Syria struck a depot near Gaziantep, Turkey.")
    assert "Syria" not in _places(result)


def test_holiday_name_is_not_a_place(classifier: Classifier) -> None:
    result = classifier.classify("The Consulate in Sydney will be closed for Victoria Day.")
    assert "Victoria" not in _places(result)


@pytest.mark.parametrize(
    ("name", "threat", "target", "places"),
    [
        ("holdout_alerts.jsonl", 0.90, 0.85, 0.90),
        ("holdout2_alerts.jsonl", 0.90, 0.85, 0.90),
        ("holdout3_alerts.jsonl", 0.90, 0.85, 0.90),
    ],
)
def test_held_out_floors(
    classifier: Classifier, fixtures_dir: Path, name: str, threat: float, target: float, places: float
) -> None:
    report = evaluate(load_dataset(fixtures_dir / name), classifier)
    assert report.threat_types.f1 >= threat
    assert report.targets.f1 >= target
    assert report.places.f1 >= places
    assert report.is_threat_correct / report.n >= 0.9
