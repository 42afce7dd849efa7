"""The curated, versioned taxonomy: phrases per label. Bump :data:`TAXONOMY_VERSION` on any change.

Notation: a trailing ``+`` on a phrase also adds the plural of its last word
("shopping mall+" -> "shopping mall", "shopping malls"). Matching is case- and accent-insensitive
and on word boundaries. Weights: 1.0 is enough on its own for a label; 0.5 needs support.
"""

from __future__ import annotations

TAXONOMY_VERSION = "2024.1"

Phrases = tuple[tuple[str, float], ...]

THREATS: dict[str, Phrases] = {
    "terrorism": (
        ("terror", 1.0), ("terrorism", 1.0), ("terrorist+", 1.0), ("terror attack+", 1.0),
        ("counterterrorism", 0.5), ("extremist+", 1.0), ("extremist group+", 1.0), ("jihadist+", 1.0),
        ("militant group+", 0.5), ("islamic state", 1.0), ("isis", 1.0), ("al qaeda", 1.0),
        ("al shabaab", 1.0), ("boko haram", 1.0), ("plot+", 1.0), ("foiled plot", 1.0),
        ("specific threat+", 1.0), ("credible threat+", 1.0), ("retaliatory attack+", 1.0),
        ("suicide bomber+", 1.0), ("suicide bombing+", 1.0), ("car bomb+", 1.0), ("bombing+", 1.0),
        ("improvised explosive device+", 1.0), ("ied+", 1.0), ("vehicle ramming", 1.0),
        ("mass casualty attack+", 1.0), ("threat level", 0.5), ("hostage taking", 0.5),
        ("planning an attack", 1.0), ("planned attack+", 1.0), ("attack plan+", 1.0),
        ("lone wolf", 1.0), ("radicalized", 0.5),
    ),
    "civil_unrest": (
        ("protest+", 1.0), ("protester+", 1.0), ("protestor+", 1.0), ("demonstration+", 1.0),
        ("demonstrator+", 1.0), ("rally", 1.0), ("rallies", 1.0), ("riot+", 1.0), ("rioting", 1.0),
        ("unrest", 1.0), ("civil unrest", 1.0), ("civil disturbance+", 1.0), ("hartal+", 1.0),
        ("general strike+", 1.0), ("tear gas", 1.0), ("water cannon+", 1.0), ("clashes with police", 1.0),
        ("clashes with security forces", 1.0), ("political violence", 1.0), ("sit in+", 0.5),
        ("march+", 0.3), ("curfew+", 0.5), ("looting", 0.5), ("roadblock+", 0.5), ("blockade+", 0.5),
        ("election violence", 1.0), ("post election violence", 1.0), ("coup", 1.0), ("coup attempt", 1.0),
        ("civil disobedience", 1.0), ("vehicle arson", 0.5),
    ),
    "armed_conflict": (
        ("missile+", 1.0), ("missile strike+", 1.0), ("ballistic missile+", 1.0), ("drone strike+", 1.0),
        ("drone attack+", 1.0), ("airstrike+", 1.0), ("air strike+", 1.0), ("air raid+", 1.0),
        ("air raid siren+", 1.0), ("shelling", 1.0), ("artillery", 1.0), ("rocket+", 1.0),
        ("rocket fire", 1.0), ("mortar fire", 1.0), ("armed clash+", 1.0), ("armed conflict+", 1.0),
        ("war", 1.0), ("civil war", 1.0), ("invasion", 1.0), ("hostilities", 1.0), ("military operation+", 1.0),
        ("military offensive", 1.0), ("offensive", 0.5), ("troop+", 0.5), ("armed forces", 0.5),
        ("defense forces", 0.5), ("defence forces", 0.5), ("cross border", 0.5),
        ("front line+", 1.0), ("frontline", 1.0), ("interception+", 0.5), ("bomb shelter+", 0.5),
        ("landmine+", 1.0), ("unexploded ordnance", 1.0), ("fighting", 0.5), ("heavy fighting", 1.0),
        ("combat", 0.5), ("insurgent+", 0.5), ("insurgency", 1.0), ("ceasefire", 0.5),
        ("armed group+", 0.5),
    ),
    "crime": (
        ("crime+", 1.0), ("criminal+", 1.0), ("criminal group+", 1.0), ("criminal activity", 1.0),
        ("gang+", 1.0), ("gang violence", 1.0), ("armed gang+", 1.0), ("cartel+", 1.0),
        ("robbery", 1.0), ("robberies", 1.0), ("armed robbery", 1.0), ("theft+", 1.0), ("thief", 1.0),
        ("thieves", 1.0), ("pickpocketing", 1.0), ("pickpocket+", 1.0), ("bag snatching", 1.0),
        ("bag snatcher+", 1.0), ("snatched", 0.5), ("mugging+", 1.0), ("carjacking+", 1.0), ("burglary", 1.0),
        ("burglaries", 1.0), ("scam+", 1.0), ("scammer+", 1.0), ("fraud+", 1.0), ("fraudulent", 1.0),
        ("fraudster+", 1.0), ("extortion", 1.0), ("homicide+", 1.0), ("murder+", 1.0),
        ("shooting+", 1.0), ("gunfire", 0.5), ("armed assault+", 1.0), ("sexual assault+", 1.0),
        ("assault+", 0.5), ("drug trafficking", 1.0), ("violent crime", 1.0), ("petty crime", 1.0),
        ("drink spiking", 1.0), ("drugging", 1.0), ("stolen", 0.5), ("steal", 0.5), ("robbed", 1.0),
    ),
    "kidnapping": (
        ("kidnap", 1.0), ("kidnapping+", 1.0), ("kidnapped", 1.0), ("kidnapper+", 1.0),
        ("express kidnapping+", 1.0), ("abduction+", 1.0), ("abducted", 1.0), ("hostage+", 1.0),
        ("held for ransom", 1.0), ("ransom", 0.5),
    ),
    "natural_disaster": (
        ("earthquake+", 1.0), ("quake+", 1.0), ("aftershock+", 1.0), ("tremor+", 0.5), ("tsunami+", 1.0),
        ("typhoon+", 1.0), ("super typhoon+", 1.0), ("hurricane+", 1.0), ("cyclone+", 1.0),
        ("tropical storm+", 1.0), ("storm surge+", 1.0), ("flood+", 1.0), ("flooding", 1.0),
        ("flash flood+", 1.0), ("landslide+", 1.0), ("mudslide+", 1.0), ("volcano", 1.0),
        ("volcanic", 1.0), ("eruption+", 1.0), ("ash cloud+", 1.0), ("volcanic ash", 1.0), ("lahar+", 1.0),
        ("wildfire+", 1.0), ("bushfire+", 1.0), ("forest fire+", 1.0), ("tornado", 1.0), ("tornadoes", 1.0),
        ("blizzard+", 1.0), ("heat wave+", 1.0), ("heatwave+", 1.0), ("extreme heat", 1.0),
        ("drought+", 1.0), ("avalanche+", 1.0), ("monsoon", 0.5), ("heavy rain+", 1.0),
        ("severe weather", 1.0), ("winter storm+", 1.0), ("snowstorm+", 1.0), ("dust storm+", 1.0),
    ),
    "health": (
        ("outbreak+", 1.0), ("epidemic+", 1.0), ("pandemic+", 1.0), ("dengue", 1.0), ("dengue fever", 1.0),
        ("cholera", 1.0), ("ebola", 1.0), ("malaria", 1.0), ("zika", 1.0), ("measles", 1.0), ("mpox", 1.0),
        ("monkeypox", 1.0), ("covid", 1.0), ("covid 19", 1.0), ("coronavirus", 1.0), ("influenza", 1.0),
        ("avian flu", 1.0), ("bird flu", 1.0), ("yellow fever", 1.0), ("polio", 1.0), ("rabies", 1.0),
        ("meningitis", 1.0), ("typhoid", 1.0), ("plague", 1.0), ("marburg", 1.0), ("chikungunya", 1.0),
        ("diphtheria", 1.0), ("health emergency", 1.0), ("public health emergency", 1.0),
        ("air quality", 1.0), ("air pollution", 1.0), ("smog", 1.0), ("hazardous air", 1.0),
        ("infectious disease+", 1.0), ("contaminated water", 1.0), ("food poisoning", 1.0),
        ("mosquito borne", 1.0), ("virus", 0.5), ("infection+", 0.5), ("disease+", 0.5), ("cases", 0.3),
        ("quarantine", 0.5), ("vaccination+", 0.3), ("carbon monoxide", 1.0),
    ),
    "transport_disruption": (
        ("rail strike+", 1.0), ("transport strike+", 1.0), ("transit strike+", 1.0),
        ("air traffic control strike+", 1.0), ("airline strike+", 1.0), ("industrial action", 1.0),
        ("rail union+", 0.5), ("will not run", 0.5),
        ("reduced service+", 1.0), ("service disruption+", 1.0), ("travel disruption+", 1.0),
        ("road closure+", 1.0), ("blocked highway+", 1.0), ("blocked road+", 1.0),
        ("road blockade+", 1.0), ("roadblock+", 0.5), ("airspace closed", 1.0), ("airspace closure+", 1.0),
        ("closed airspace", 1.0), ("flight cancellation+", 1.0), ("limited seats", 1.0),
        ("hartal+", 1.0), ("general strike+", 1.0), ("minimize movement", 0.5),
        ("heavy road traffic", 0.5), ("stranded", 0.5),
    ),
    "cyber": (
        ("cyber", 1.0), ("cyberattack+", 1.0), ("cyber attack+", 1.0), ("phishing", 1.0), ("malware", 1.0),
        ("ransomware", 1.0), ("hacker+", 1.0), ("hacking", 1.0), ("hacked", 1.0), ("data breach+", 1.0),
        ("spyware", 1.0), ("fraudulent website+", 1.0), ("fake website+", 1.0), ("scam website+", 1.0),
        ("website+", 0.5), ("online", 0.3), ("ddos", 1.0), ("denial of service", 1.0),
        ("identity theft", 0.5), ("text message+", 0.3), ("impersonating", 0.5), ("links", 0.3),
    ),
}

TARGETS: dict[str, Phrases] = {
    "shopping_centers": (
        ("shopping center+", 1.0), ("shopping centre+", 1.0), ("shopping mall+", 1.0), ("mall+", 1.0),
        ("shopping district+", 1.0), ("shopping area+", 1.0), ("department store+", 1.0),
        ("shopping complex", 1.0), ("shopping complexes", 1.0), ("commercial center+", 1.0),
        ("supermarket+", 1.0), ("grand bazaar", 1.0),
    ),
    "transport_hubs": (
        ("airport+", 1.0), ("international airport+", 1.0), ("railway station+", 1.0), ("train station+", 1.0),
        ("metro station+", 1.0), ("subway station+", 1.0), ("bus station+", 1.0), ("bus terminal+", 1.0),
        ("ferry terminal+", 1.0), ("station+", 1.0), ("metro", 1.0), ("subway", 1.0), ("underground", 0.5),
        ("london underground", 1.0), ("transport hub+", 1.0), ("transportation hub+", 1.0),
        ("public transport", 1.0), ("public transportation", 1.0), ("airport train+", 1.0),
        ("railway+", 1.0), ("seaport+", 1.0), ("terminal+", 0.5), ("transit system+", 1.0),
        ("skytrain", 1.0),
    ),
    "places_of_worship": (
        ("place of worship", 1.0), ("places of worship", 1.0), ("house of worship", 1.0),
        ("houses of worship", 1.0), ("church+", 1.0), ("synagogue+", 1.0), ("mosque+", 1.0),
        ("temple+", 1.0), ("cathedral+", 1.0), ("basilica+", 1.0), ("shrine+", 1.0),
        ("religious site+", 1.0), ("religious gathering+", 1.0), ("religious institution+", 1.0),
        ("religious building+", 1.0), ("religious holiday+", 0.5), ("worshippers", 1.0),
        ("sagrada familia", 1.0), ("notre dame", 1.0), ("hagia sophia", 1.0), ("blue mosque", 1.0),
        ("western wall", 1.0), ("holy sepulchre", 1.0), ("al aqsa", 1.0), ("st peter s basilica", 1.0),
    ),
    "diplomatic_missions": (
        ("embassies", 1.0), ("consulates", 1.0), ("diplomatic facilit+y", 1.0), ("diplomatic facilities", 1.0),
        ("diplomatic mission+", 1.0), ("diplomatic post+", 1.0), ("diplomatic premises", 1.0),
        ("foreign missions", 1.0), ("diplomatic compound+", 1.0),
    ),
    "westerners_venues": (
        ("western interests", 1.0), ("western businesses", 1.0), ("expatriate communit+y", 1.0),
        ("expatriate communities", 1.0), ("foreigners gather", 1.0), ("westerners gather", 1.0),
    ),
    "crowded_places": (
        ("crowd+", 1.0), ("crowded place+", 1.0), ("crowded area+", 1.0), ("crowded venue+", 1.0),
        ("crowded outdoor venue+", 1.0), ("large gathering+", 1.0), ("mass gathering+", 1.0),
        ("public gathering+", 1.0), ("gathering+", 0.5), ("places where people gather", 1.0),
        ("gather in large numbers", 1.0), ("market+", 1.0), ("christmas market+", 1.0),
        ("marketplace+", 1.0), ("bazaar+", 1.0), ("festival+", 1.0), ("public event+", 1.0),
        ("parade+", 1.0), ("public square+", 1.0), ("public places", 1.0), ("crowded", 1.0),
        ("large crowds", 1.0), ("public spaces", 1.0),
    ),
    "hotels": (("hotel+", 1.0), ("resort+", 1.0), ("guesthouse+", 1.0), ("guest house+", 1.0),
               ("hostel+", 1.0), ("lodge+", 0.5)),
    "government_buildings": (
        ("government building+", 1.0), ("government office+", 1.0), ("government facilit+y", 1.0),
        ("government facilities", 1.0), ("government institution+", 1.0), ("state institution+", 1.0),
        ("public building+", 1.0), ("ministries", 1.0), ("ministry building+", 1.0),
        ("presidential palace+", 1.0), ("state house", 1.0), ("city hall+", 1.0), ("town hall+", 1.0),
        ("courthouse+", 1.0), ("police station+", 1.0), ("parliament building+", 1.0),
        ("national assembly", 0.5), ("government compound+", 1.0), ("federal building+", 1.0),
        ("military installation+", 0.5),
    ),
    "schools": (("school+", 1.0), ("universit+y", 1.0), ("universities", 1.0), ("college+", 1.0),
                ("campus", 1.0), ("campuses", 1.0), ("educational institution+", 1.0),
                ("kindergarten+", 1.0)),
    "tourist_sites": (
        ("tourist site+", 1.0), ("tourist attraction+", 1.0), ("tourist area+", 1.0),
        ("tourist destination+", 1.0), ("tourist+", 1.0), ("tourism site+", 1.0), ("landmark+", 1.0),
        ("frequented by tourists", 1.0), ("popular with tourists", 1.0), ("historic site+", 1.0),
        ("monument+", 1.0), ("museum+", 1.0), ("national park+", 1.0), ("hiking trail+", 1.0),
        ("hiking", 1.0), ("climbing", 1.0), ("trekking", 1.0), ("beach+", 1.0), ("ski resort+", 1.0),
        ("sightseeing", 1.0), ("eiffel tower", 1.0), ("acropolis", 1.0), ("taj mahal", 1.0), ("las ramblas", 1.0), ("old town", 1.0),
        ("tour operator+", 0.5), ("tour group+", 1.0), ("sagrada familia", 1.0), ("notre dame", 1.0),
        ("hagia sophia", 1.0), ("blue mosque", 1.0), ("western wall", 1.0),
    ),
    "entertainment_venues": (
        ("concert+", 1.0), ("concert venue+", 1.0), ("stadium+", 1.0), ("stadium concert+", 1.0),
        ("nightclub+", 1.0), ("night club+", 1.0), ("nightlife", 1.0), ("cinema+", 1.0), ("theater+", 1.0),
        ("theatre+", 1.0), ("sporting event+", 1.0), ("sports event+", 1.0), ("music festival+", 1.0),
        ("entertainment venue+", 1.0), ("entertainment district+", 1.0), ("arena+", 1.0),
        ("football match+", 1.0), ("casino+", 1.0),
    ),
}
"""Bars, cafes and restaurants are deliberately absent: the labelled data does not count them as
entertainment venues (a "restaurant popular with foreigners" is a Westerners' venue)."""

SINGULAR_INSTITUTIONS: dict[str, tuple[str, ...]] = {
    "diplomatic_missions": ("embassy", "consulate", "consulate general", "high commission"),
    "government_buildings": ("parliament", "ministry", "presidential palace", "congress", "senate",
                             "government house", "prime minister s office"),
}
"""Singular institutions count as targets only after a locative word ("at the U.S. Embassy",
"the area around Parliament", "outside the Parliament building"): as a sentence's subject ("The
Embassy will be closed", "the Ministry of Health declared") they are the speaker, not the target."""

WESTERN_WORDS = ("westerners", "western visitors", "western tourists", "western nationals", "foreigners",
                 "foreign nationals", "foreign visitors", "expatriates", "expats", "international visitors",
                 "americans", "u s citizens", "international travelers", "international travellers")
WESTERN_VERBS = ("frequented by", "popular with", "popular among", "catering to", "visited by", "favored by",
                 "favoured by", "used by", "known to attract")
"""``<verb> <western word>`` -> westerners_venues; ``<verb> tourists`` is a tourist site instead."""

WEAK_TERROR = ("attack on", "attacks on", "attack against", "attacks against", "attacks targeting",
               "threats against", "threat against", "threats to", "may target", "could target",
               "could be targeted", "may be targeted", "might be targeted", "explosion+", "blast+",
               "bomb+", "explosive+", "planning an attack", "target", "targets", "targeting")
"""Count as terrorism only next to a named target in the same sentence and with no military cue."""

TRANSPORT_SUBJECTS = ("flight+", "commercial flight+", "airport+", "road+", "highway+", "railway+",
                      "train+", "train service+", "rail service+", "bus service+", "ferry", "ferries",
                      "ferry service+", "port+", "border crossing+", "public transport", "metro service+", "air traffic", "airline+", "route+", "bridge+")
TRANSPORT_EFFECTS = ("cancelled", "canceled", "cancel", "suspended", "suspend", "closed", "shut", "blocked",
                     "delayed", "delays", "disrupted", "disruption+", "grounded", "diverted", "halted",
                     "limited seats", "not run", "not operate", "reduced service", "impassable",
                     "remain in port", "washed out", "stranded")
TRANSPORT_SUPPRESS = ("remains open", "remain open", "operating normally", "operate normally")
"""A transport subject and an effect in one sentence make a transport disruption, unless suppressed."""

NEUTRAL = ("bomb shelter+", "emergency services", "emergency service", "duty officer", "security personnel",
           "security measures", "security plan+", "personal security", "routine passport", "routine",
           "passport services", "visa services", "ministry of health", "health insurance",
           "cyber security centre", "cyber security center", "in case of emergency", "emergency contact",
           "an emergency", "fire department", "security forces", "police", "roads and bridges")
"""Phrases that contain a cue word but mean nothing by themselves (longest match absorbs the cue)."""

ROUTINE = ("passport+", "visa+", "voting", "vote", "absentee", "ballot+", "holiday", "federal holiday",
           "closure", "closed on", "will be closed", "in observance", "appointment+", "consular section",
           "town hall meeting", "notarial", "registration", "business hours", "tax", "social security")
"""Routine consular business: lowers the threat confidence; with only weak cues, no threat."""

NEGATORS = ("no longer", "no reports of", "no report of", "no knowledge of", "not aware of", "no indication",
            "no evidence of", "no specific", "no credible", "no known", "there is no", "there are no",
            "there was no", "there were no", "not expected", "unlikely", "without", "ruled out", "denied",
            "no threat", "nor", "not")
"""A cue preceded by one of these in the same clause does not count (``do not`` is excluded:
imperative advice such as "Do not attempt to drive through protesters" keeps its cue)."""
