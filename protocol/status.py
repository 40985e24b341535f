"""The catalogue of unit statuses.

Codes follow the German FMS status digits that dispatchers already know, so a
command room that speaks FMS maps them one to one. An SOS is not a status: it
travels as its own message kind (FMS keeps 0 for the priority call, the
nearest thing). Stable: a code's meaning never changes; new ones are added.
Imports nothing.
"""

AVAILABLE = 1
AT_STATION = 2
EN_ROUTE = 3
ON_SCENE = 4
TALK_REQUEST = 5
OUT_OF_SERVICE = 6
BUSY = 7
AT_DESTINATION = 8

# code -> (name, label for people, FMS meaning it is aligned with)
CATALOGUE = {
    AVAILABLE: ("available", "Available", "1 Einsatzbereit über Funk"),
    AT_STATION: ("at_station", "Available at station", "2 Einsatzbereit auf Wache"),
    EN_ROUTE: ("en_route", "En route", "3 Einsatz übernommen"),
    ON_SCENE: ("on_scene", "On scene", "4 Am Einsatzort"),
    TALK_REQUEST: ("talk_request", "Requests to talk", "5 Sprechwunsch"),
    OUT_OF_SERVICE: ("out_of_service", "Out of service", "6 Nicht einsatzbereit"),
    BUSY: ("busy", "Busy (transporting)", "7 Patient aufgenommen"),
    AT_DESTINATION: ("at_destination", "At destination", "8 Am Transportziel"),
}

# Statuses in which the command room may send the unit to a new incident.
DISPATCHABLE = (AVAILABLE, AT_STATION)

_BY_NAME = {entry[0]: code for code, entry in CATALOGUE.items()}


def is_status(code):
    return type(code) is int and code in CATALOGUE


def name_of(code):
    return CATALOGUE[code][0]


def label_of(code):
    return CATALOGUE[code][1]


def code_of(name):
    """The code of a status name ("en_route" -> 3); KeyError names the unknown one."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError("unknown status %r; known: %s" % (name, ", ".join(sorted(_BY_NAME))))


def names():
    """Every status name, sorted."""
    return sorted(_BY_NAME)
