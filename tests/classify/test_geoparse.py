from __future__ import annotations

from vigil_classify.engine import Classifier


def _places(result: object) -> set[tuple[str, str]]:
    return {(loc.name, loc.country_code) for loc in result.locations}  # type: ignore[attr-defined]


def test_moscow_russia_vs_idaho(classifier: Classifier) -> None:
    ru = classifier.classify("Protests are expected in Moscow and St. Petersburg, Russia.")
    moscow = next(loc for loc in ru.locations if loc.name == "Moscow")
    assert moscow.country_code == "RU"
    assert moscow.geonameid == 524901
    assert ("Saint Petersburg", "RU") in _places(ru)
    us = classifier.classify("Flooding has closed roads in Moscow, Idaho.")
    moscow_us = next(loc for loc in us.locations if loc.name == "Moscow")
    assert moscow_us.country_code == "US"


def test_common_word_place_needs_context(classifier: Classifier) -> None:
    plain = classifier.classify("Nice weather is expected. Reading the news is advised. Police report calm.")
    assert plain.locations == ()
    with_context = classifier.classify("A vehicle attack in Nice, France killed several people.")
    assert ("Nice", "FR") in _places(with_context)


def test_issuer_seat_is_not_a_location_unless_named(classifier: Classifier) -> None:
    text = "U.S. Embassy Moscow: drone strikes have hit Belgorod and Kursk regions."
    result = classifier.classify(text, issuer="U.S. Embassy Moscow")
    assert ("Moscow", "RU") not in _places(result)
    assert ("Belgorod", "RU") in _places(result)
    named = classifier.classify("Protests are expected in Moscow.", issuer="U.S. Embassy Moscow")
    assert ("Moscow", "RU") in _places(named)


def test_border_and_origin_are_not_locations(classifier: Classifier) -> None:
    result = classifier.classify(
        "Rockets have been fired from Gaza toward Ashkelon. "
        "Shelling hit Belgorod near the border with Ukraine."
    )
    places = _places(result)
    assert ("Ashkelon", "IL") in places
    assert not any(cc in ("PS", "UA") for _, cc in places)


def test_region_words_and_countries(classifier: Classifier) -> None:
    result = classifier.classify("An earthquake hit Hatay and Gaziantep provinces, Turkey.")
    hatay = next(loc for loc in result.locations if loc.name == "Hatay")
    assert hatay.kind == "region"
    assert result.countries == ("TR",)
    assert all(loc.kind != "country" for loc in result.locations)
    only_country = classifier.classify("Protests have spread across Venezuela.")
    assert [(loc.name, loc.kind) for loc in only_country.locations] == [("Venezuela", "country")]


def test_longest_match_and_alternate_names(classifier: Classifier) -> None:
    result = classifier.classify("Air quality is hazardous in New Delhi. Shelling hit Kiev.")
    places = _places(result)
    assert ("New Delhi", "IN") in places
    assert ("Kyiv", "UA") in places
    assert ("Delhi", "IN") not in places


def test_volcano_name_is_not_the_town(classifier: Classifier) -> None:
    result = classifier.classify("The Villarrica volcano may erupt. Pucon, Chile is near the volcano.")
    places = _places(result)
    assert ("Pucón", "CL") in places
    assert not any(name == "Villarrica" for name, _ in places)
